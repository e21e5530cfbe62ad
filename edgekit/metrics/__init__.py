"""Scores per task: `classification` (accuracy, confusion, top-1 agreement) and `detection` (COCO mAP, detection
agreement)."""
