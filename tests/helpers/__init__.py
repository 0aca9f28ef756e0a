"""What the tests share: flow runs, S3 fixtures, example frames, paths."""
