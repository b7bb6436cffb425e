"""Image analysis that every layer may use: the lattice of an image, Gaussian column fits,
column finding and the image-quality estimators.

- :mod:`~stembench.imaging.lattice`: the lattice of an image from its power spectrum;
- :mod:`~stembench.imaging.columns`: the whole-image, shared-width Gaussian lattice fit;
- :mod:`~stembench.imaging.gaussian`: per-column windows and Gaussian fits;
- :mod:`~stembench.imaging.peaks`: the Atomap-style column finder;
- :mod:`~stembench.imaging.estimate`, :mod:`~stembench.imaging.quality`: where an image sits
  on each quality axis of the benchmark.

It imports nothing of ``dataset_publish``, ``endpoints``, ``client`` or ``service``.
"""
