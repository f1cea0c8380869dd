"""Floor 4: what a reader sees: figures (:mod:`~repalign.report.plotting`) and the paper's own tables (:mod:`~repalign.report.paper`)."""
