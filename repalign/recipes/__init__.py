"""Floor 4: recipes by claim family, each a cached function returning a typed result.

:mod:`~repalign.recipes.layerwise` (notebooks 00-06), :mod:`~repalign.recipes.descent` (the linear learner of 01 and
06), :mod:`~repalign.recipes.peaks` (07), :mod:`~repalign.recipes.zoo` (08, 11) and :mod:`~repalign.recipes.transfer`
(09, 10); :mod:`~repalign.recipes.results` turns their typed results into the plain data the cache stores.
"""
