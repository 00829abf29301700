"""Heads that read a backbone's encoder features: the degradation classifier (MaskDCPT)."""

from uir.models.heads.classifier import Bottleneck, ClassificationHead, DegradationClassifier

__all__ = ["Bottleneck", "ClassificationHead", "DegradationClassifier"]
