"""pardus.stats: population statistics from camera-trap data.

Plain functions on NumPy arrays and small frozen dataclasses; every estimate carries its standard
error and interval (:class:`pardus.stats.estimates.Estimate`) and every estimator cites its source.

- ``effort``    camera-operation matrix, trap-nights, independent events, relative abundance index
- ``capture``   capture histories (individual x occasion x detector), MNKA, new individuals
- ``closed``    closed-population models M0, Mt, Mb, Mh2, Mh (Chao), Huggins; AIC table
- ``secr``      spatially explicit capture-recapture by maximum likelihood (reproduces secr's captdata fits)
- ``occupancy`` single-season occupancy psi(.) p(.)
- ``activity``  activity densities on the circle, overlap (Dhat1/Dhat4) with bootstrap intervals, sun time
- ``report``    the plot-year report (HTML, JSON, CSV) read from the store; ``commands.report`` is its CLI
"""
