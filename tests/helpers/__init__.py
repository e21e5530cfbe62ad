"""What the tests share: the skip policy, the caches, encoded images, and the scripts they run."""

# what a classifier's training run writes into its folder (edgekit.train, the CLI, tf.distribute's chief)
CLASSIFIER_RUN_FILES = ["confusion.png", "history.png", "metrics.json", "model.keras", "splits.json"]
