"""What the tests share: the skip policy, the caches, encoded images, and the scripts they run."""
