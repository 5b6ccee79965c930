"""minicam: CNN explanation methods in a few honest lines each, checked against hand-derived numbers.

Every map function takes (model, x (N, C, H, W), target, [layer]) and returns a raw, detached map
at the layer's resolution; `upsample` and `normalize` turn it into an image-sized picture.
"""
from .checks import NotApplicable, resolve_layer
from .hooks import Capture, capture, default_layer, explainable_layers, forward_acts
from .maps import normalize, upsample
from .gradients import (cam, class_model, gradcam, gradcam_pp, gradcam_weights, gradcampp_alphas,
                        gradcampp_weights, guided_backprop, guided_gradcam, saliency, weighted_sum)
from .lrp import contrastive_start, lrp, relevance_cam
from .methods import METHODS, Method
from . import data, metrics, models  # minicam.data, minicam.metrics, minicam.models; viz loads matplotlib: import it by name

__version__ = "0.2.0"
__all__ = [
    "NotApplicable", "METHODS", "Method",
    "Capture", "capture", "forward_acts", "resolve_layer", "explainable_layers", "default_layer",
    "normalize", "upsample",
    "cam", "class_model", "gradcam", "gradcam_pp", "gradcam_weights", "gradcampp_alphas",
    "gradcampp_weights", "guided_backprop", "guided_gradcam", "saliency", "weighted_sum",
    "contrastive_start", "lrp", "relevance_cam",
    "data", "metrics", "models",
]
