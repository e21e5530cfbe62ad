"""Training on the host (Keras 3 on TensorFlow), one module per job.

`classification` (``edgekit.train``), `detection` and `detector` (the anchor-free detector and
its targets), `architectures` (the registry ``edgekit.train`` builds from) and `distribution`
(tf.distribute strategies). Nothing is imported here: Keras loads on first use.
"""
