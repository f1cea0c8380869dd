"""Floor 5: running the replication: notebook parameters, verdicts, notebooks, paper-check, sweeps and the command line."""
