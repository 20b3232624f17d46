"""Active-learning benchmark harness for semantic segmentation with sparse pixel labels."""

__version__ = "0.1.0"
