"""Floor 0: what every layer needs: atomic writes, provenance, progress, paths, code closures and the result cache."""
