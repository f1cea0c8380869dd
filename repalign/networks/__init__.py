"""Floor 3: networks and learners in torch: the device and seeding rules, models, features, training, probes, pre-training."""
