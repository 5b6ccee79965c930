"""`minicam explain`: the maps of your own model on your own images, as a gallery.

    minicam explain --model resnet50 --weights IMAGENET1K_V2 --images photos/ --top 3
    minicam explain --model mypackage.nets:build --weights run7.pt --classes classes.txt --images val/

(`python -m minicam explain ...` is the same command.)

--model: a torchvision classification model by name (resnet50, vgg16, ...), a shipped shapes model by
name (shapes_vgg, ...), or package.module:function, called with no arguments to build yours.
--weights: a file (a state_dict; a whole pickled model only with --trust-checkpoint, as unpickling runs
code from the file), or the name of a torchvision model's weights (IMAGENET1K_V1), used only if the file
is already in torch's local cache (--allow-download lets torchvision fetch it). The shapes models come
with theirs. Class names and preprocessing: the torchvision weights' own (categories, transforms), the
package's for the shapes models, else --classes FILE (one name per line) and --size/--mean/--std
(ImageNet's by default; the whole image is resized, nothing cut off).

For each image (files and folders, searched recursively; any size, EXIF orientation applied): a PNG
with the image as the model sees it and, for each of its top classes (titled with the class name and
probability), each method's map on it and the raw map with its colour bar; a row per (image, class,
method) in maps.csv with the logit, the probability and the map's peak in the original image's pixels
(empty for a flat map, which has none); with --save-maps the raw maps, one .pt file per image;
index.html, a gallery of it all. One forward pass per batch gives the top classes and the layer's
activations, and one backward pass per class their maps (the CAM family from that one capture).

Every file is written under a temporary name and renamed when complete; one run at a time writes in a
folder; Ctrl-C stops after the images that are done and leaves the gallery and the CSV of those.
Exit status: 0 every image explained, 1 some files skipped (each named on stderr), 2 a usage error,
130 interrupted (Ctrl-C).
"""
from __future__ import annotations

import argparse
import csv
import difflib
import html
import importlib
import io
import math
import pickle
import struct
import sys
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlparse

import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont
import PIL.ImageOps
import torch
import torchvision
import torchvision.transforms.functional as TF
from torch import nn
from torchvision.transforms import InterpolationMode
from tqdm import tqdm

from minicam import models
from minicam.checks import NotApplicable, check_model, pixel_size, whole_number
from minicam.data import CLASSES
from minicam.hooks import capture, default_layer, explainable_layers, forward_acts
from minicam.maps import normalize, upsample
from minicam.methods import METHODS
from minicam.metrics import peak

from ._common import INTERRUPTED, OutputFolder, UsageError, quiet_warnings, write_atomic

__all__ = ["main", "load_image", "find_images", "Preprocess", "CSV_COLUMNS", "IMAGENET_MEAN", "IMAGENET_STD"]

PROG = "minicam explain"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SHAPES_SIZE = 64  # the shipped shapes models were trained on 64x64 images in [0, 1]
MAX_SIDE = 4096  # an input side beyond any classification model's (ImageNet models take 224 to 600)
MAX_PIXELS = 64_000_000  # larger photos are refused before decoding: a 12 KB PNG may unpack to gigabytes
PROBS = ("softmax", "sigmoid")
CSV_COLUMNS = ("image", "rank", "class", "class_index", "logit", "probability", "method", "layer",
               "peak_row", "peak_col")
DEVICES = "cpu, or cuda / cuda:1 where CUDA is available"


# ---- the model and its weights --------------------------------------------------------------------

def build_model(spec: str, meta: bool = False) -> tuple[nn.Module, str]:
    """The untrained model `spec` names and its kind: "shapes" (a shipped shapes model), "torchvision"
    (a torchvision classification model), or "function" (package.module:function, called with no
    arguments, returning the model). meta: a torchvision model is built on the meta device (shapes, no
    data: no time spent drawing random weights that its state_dict replaces)."""
    if spec in models.PRETRAINED:
        return models.create_model(spec), "shapes"
    if ":" in spec:
        return _built_by(spec), "function"
    names = torchvision.models.list_models(module=torchvision.models)  # the classification models
    if spec in names:
        with torch.device("meta" if meta else "cpu"):
            return torchvision.models.get_model(spec, weights=None), "torchvision"
    close = difflib.get_close_matches(spec, names + list(models.PRETRAINED), n=4)
    raise UsageError(f"--model: unknown model {spec!r}{f' (did you mean {close}?)' if close else ''}; give a "
                     "torchvision classification model (e.g. resnet50, vgg16), a shipped one "
                     f"{list(models.PRETRAINED)}, or package.module:function that builds yours")


def _built_by(spec: str) -> nn.Module:
    """The model that the function `package.module:function` returns."""
    module_name, _, function = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise UsageError(f"--model: cannot import {module_name!r} ({err}); give package.module:function with a "
                         "module importable from here (python -m puts the current directory on the path)") from None
    build = getattr(module, function, None)
    if not callable(build):
        raise UsageError(f"--model: {module_name} has no function {function!r}; give package.module:function")
    try:
        model = build()
    except Exception as err:  # noqa: BLE001 -- the user's code: say what failed, in one line
        raise UsageError(f"--model: {spec}() failed ({type(err).__name__}: {err}); the function must build "
                         "your model with no arguments") from None
    if not isinstance(model, nn.Module):
        raise UsageError(f"--model: {spec}() returned a {type(model).__name__}; it must return a torch.nn.Module")
    return model


def _checkpoint(path: Path, trust: bool):
    """What torch.save wrote to `path`: tensors only (weights_only=True), or with trust any pickle."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # more than tensors, or not torch's format at all
        pickled = zipfile.is_zipfile(path)  # torch.save writes a zip archive holding a pickle
    except Exception:  # noqa: BLE001 -- a truncated or foreign file fails in many ways
        pickled = False
    if not pickled:
        raise UsageError(f"--weights: {path} is not a file torch.save wrote; give a state_dict file")
    if not trust:
        raise UsageError(f"--weights: {path} holds pickled objects (e.g. a whole saved model), not only tensors. "
                         "Loading it runs code stored in the file, which could do anything: pass "
                         "--trust-checkpoint only if you trust where it came from, or save model.state_dict() instead")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 -- e.g. a class the pickle names that cannot be imported here
        raise UsageError(f"--weights: {path} could not be unpickled ({type(err).__name__}: {err}); the classes it "
                         "names must be importable here, or give a state_dict file") from None


def _state_dict(obj, path) -> dict:
    """The state_dict in a checkpoint: itself, or under "state_dict"/"model_state_dict"/"model"; a
    "module." prefix (DataParallel) is taken off."""
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UsageError(f"--weights: {path} holds a {type(obj).__name__}, neither a state_dict (names -> tensors) "
                         "nor a model; save model.state_dict()")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def _load_state(model: nn.Module, state: dict, what: str, where: str) -> nn.Module:
    """model with `state` loaded, or an error saying how they differ (another architecture's weights)."""
    own = model.state_dict()
    missing, unexpected = [k for k in own if k not in state], [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} in the file, {tuple(own[k].shape)} in the model"
              for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        found = [f"{len(v)} {name} (e.g. {v[0]})" for name, v in
                 (("missing", missing), ("unexpected", unexpected), ("of another shape", shapes)) if v]
        raise UsageError(f"--weights: {where} does not fit --model {what}: {'; '.join(found)}. Are these the "
                         f"weights of another architecture? Give --model the one they were saved from")
    meta = any(t.is_meta for t in own.values())
    model.load_state_dict(state, assign=meta)  # a model built on the meta device takes the state's tensors
    if meta and any(t.is_meta for t in [*model.parameters(), *model.buffers()]):  # a buffer outside the state
        raise UsageError(f"--weights: {where} leaves tensors of --model {what} without values; give its full "
                         "state_dict")
    return model


def _fit_head(model: nn.Module, name: str, state: dict) -> nn.Module:
    """A torchvision model rebuilt with as many classes as the state's last linear layer (a fine-tuned head)."""
    linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    weight = state.get(f"{linear[-1]}.weight") if linear else None  # SqueezeNet's head is a conv: nothing to fit
    if weight is None or weight.dim() != 2 or weight.shape[0] == model.state_dict()[f"{linear[-1]}.weight"].shape[0]:
        return model
    with torch.device("meta"):
        return torchvision.models.get_model(name, weights=None, num_classes=weight.shape[0])


def _cached_weights(weights, allow_download: bool, quiet: bool) -> dict:
    """The state_dict of torchvision `weights` from torch's local cache; downloaded only if allowed."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name
    if path.is_file():
        return _state_dict(_checkpoint(path, trust=False), path)
    if not allow_download:
        raise UsageError(
            f"--weights: {weights} is not in torch's local cache: its file is expected at {path}. Nothing is "
            f"downloaded unless you ask: rerun with --allow-download (torchvision fetches {weights.url}), or "
            f"download that URL to that path yourself (the environment variable TORCH_HOME moves the cache)")
    try:
        return weights.get_state_dict(progress=not quiet, check_hash=True)
    except OSError as err:
        raise UsageError(f"--allow-download: fetching {weights.url} failed ({err}); check the connection, or "
                         f"download it to {path} yourself") from None


def _torchvision_weights(name: str, spec: str):
    """The weights enum member `spec` names for torchvision model `name` (IMAGENET1K_V1, DEFAULT, or
    ResNet50_Weights.IMAGENET1K_V2), or None if spec names none of them."""
    enum = torchvision.models.get_model_weights(name)
    member = spec.split(".", 1)[1] if spec.startswith(enum.__name__ + ".") else spec
    return enum[member] if member in enum.__members__ else None


def load_model(spec: str, weights: str | None = None, trust: bool = False, allow_download: bool = False,
               quiet: bool = True) -> tuple[nn.Module, str, object]:
    """(model in eval mode with its weights, its kind (see build_model), the torchvision weights used or
    None). Every problem is a UsageError whose message names the option."""
    model, kind = build_model(spec, meta=weights is not None)
    if weights is None:
        if kind == "torchvision":
            raise UsageError(f"--weights is needed for {spec}: a file, or one of its weights names "
                             f"{list(torchvision.models.get_model_weights(spec).__members__)}")
        model, named = models.load_pretrained(spec) if kind == "shapes" else model, None
    elif kind == "torchvision" and not Path(weights).exists() and _torchvision_weights(spec, weights) is not None:
        named = _torchvision_weights(spec, weights)
        state = _cached_weights(named, allow_download, quiet)
        model = _load_state(_fit_head(model, spec, state), state, spec, str(named))
    else:
        model, named = _from_file(model, kind, spec, Path(weights), trust), None
    return _runnable(model, spec).eval(), kind, named


def _from_file(model: nn.Module, kind: str, spec: str, path: Path, trust: bool) -> nn.Module:
    """model with the weights in the file at path (a state_dict, or with trust a whole model)."""
    if not path.is_file():
        names = f" or a weights name {list(torchvision.models.get_model_weights(spec).__members__)}" \
            if kind == "torchvision" else ""
        raise UsageError(f"--weights: no such file {path}; give a state_dict file{names}")
    obj = _checkpoint(path, trust)
    if isinstance(obj, nn.Module):
        if type(obj) is not type(model):
            raise UsageError(f"--weights: {path} holds a whole {type(obj).__name__}, but --model {spec} builds a "
                             f"{type(model).__name__}; give --model the architecture of the saved model")
        return obj
    state = _state_dict(obj, path)
    return _load_state(_fit_head(model, spec, state) if kind == "torchvision" else model, state, spec, str(path))


def _runnable(model: nn.Module, spec: str) -> nn.Module:
    """The model as the methods run it (minicam.checks.check_model: no TorchScript, ...), in float32."""
    try:
        model = check_model(model)
    except (TypeError, ValueError) as err:
        raise UsageError(f"--model {spec}: {err}") from None
    dtypes = {p.dtype for p in model.parameters()} - {torch.float32}
    if dtypes:
        raise UsageError(f"--model {spec}: its parameters are {', '.join(map(str, dtypes))}, and explain runs float32 "
                         "images through it; give the model in float32 (model.float() before saving its state_dict)")
    for parameter in model.parameters():  # the maps need gradients to layers and images only: no graph for weights
        parameter.requires_grad_(False)
    return model


def _broken_weights(model: nn.Module) -> str:
    """A message naming the first weight or buffer that is NaN or inf, or "" if they are all finite."""
    for key, value in model.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return (f"--weights: {key} holds NaN or inf values, so the model's scores are not numbers; give "
                    "weights from a training run that did not diverge")
    return ""


# ---- images and preprocessing ----------------------------------------------------------------------

@dataclass(frozen=True)
class Preprocess:
    """How an image becomes the model's input x (3, H, W), and where the input's pixels lie in the image.

    size: the input (H, W). resize=None resizes the whole image to size (nothing is cut off); an int
    resizes the shorter side to it and cuts out the centre `size`, as torchvision's weights' transforms
    do (resize 256, crop 224 for most). Pixels go to [0, 1], then (x - mean) / std per channel."""
    size: tuple
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    resize: int | None = None
    interpolation: InterpolationMode = InterpolationMode.BILINEAR

    def __post_init__(self):
        object.__setattr__(self, "size", pixel_size(self.size, "size"))
        for name, positive in (("mean", False), ("std", True)):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or len(value) != 3 or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (v > 0 or not positive)
                    for v in value):
                raise ValueError(f"{name} must be three finite numbers{' > 0' if positive else ''}, one per colour "
                                 f"channel (R, G, B), got {value!r}")
        if self.resize is not None:
            whole_number(self.resize, "resize", min(self.size), floats=False,
                         want=f"None or a whole number >= the input's shorter side {min(self.size)}")

    def view(self, image: PIL.Image.Image) -> torch.Tensor:
        """The part of the RGB image the model sees, as it sees it before normalising: (3, H, W) in [0, 1]."""
        image = TF.resize(image, [self.resize] if self.resize else list(self.size), interpolation=self.interpolation,
                          antialias=True)  # on the PIL image, as torchvision's ImageClassification does
        return TF.convert_image_dtype(TF.pil_to_tensor(TF.center_crop(image, list(self.size))), torch.float)

    def normalize(self, view: torch.Tensor) -> torch.Tensor:
        """(view - mean) / std per channel: the model's input x (3, H, W) from `view`'s output."""
        return TF.normalize(view, list(self.mean), list(self.std))

    def __call__(self, image: PIL.Image.Image) -> torch.Tensor:
        """The model's input x (3, H, W) for an RGB image (PIL), as torchvision's weights' transforms make it."""
        return self.normalize(self.view(image))

    def to_image(self, row: int, col: int, image_size) -> tuple[int, int]:
        """Pixel (row, col) of the input in the original image of image_size (H, W): its (row, col) there."""
        height, width = pixel_size(image_size, "image_size")
        resized = self._resized(height, width)
        top, left = (int(round((side - cut) / 2.0)) for side, cut in zip(resized, self.size))  # as center_crop
        return (min(height - 1, max(0, int((row + top + 0.5) * height / resized[0]))),
                min(width - 1, max(0, int((col + left + 0.5) * width / resized[1]))))

    def _resized(self, height: int, width: int) -> tuple[int, int]:
        """The size the image is resized to before the centre is cut out (torchvision's rule for an int)."""
        if self.resize is None:
            return self.size
        long = int(self.resize * max(height, width) / min(height, width))
        return (long, self.resize) if width <= height else (self.resize, long)


def _grey(image: PIL.Image.Image) -> PIL.Image.Image:
    """A 16-bit, 32-bit integer or float greyscale image as 8 bits: 16-bit scaled to 0..255; float pixels
    in [0, 1] scaled by 255; 32-bit integers and floats outside [0, 1] have no agreed white: refused."""
    if image.mode.startswith("I;16"):
        return image.point(lambda v: v / 256).convert("L")
    low, high = image.getextrema()
    if image.mode == "F" and math.isfinite(low) and math.isfinite(high) and 0 <= low and high <= 1:
        return image.point(lambda v: v * 255).convert("L")
    kind = "float" if image.mode == "F" else "32-bit integer"
    raise ValueError(f"{kind} pixels from {low:g} to {high:g} (mode {image.mode}), which have no agreed black and "
                     "white; save it as an 8 or 16-bit image (or as floats in [0, 1])")


def load_image(path) -> PIL.Image.Image:
    """The image at path as RGB, upright (EXIF orientation applied): greyscale, palette and 16-bit images
    converted, float images in [0, 1] scaled, transparent pixels put on white. A file that is not an image
    Pillow can read, is truncated or corrupt, is a broken link, has more than MAX_PIXELS pixels, or holds
    32-bit integer or out-of-range float pixels, is a ValueError naming it."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise FileNotFoundError(f"path: no such file {path}; give an image file")
    if path.is_symlink() and not path.exists():
        raise ValueError(f"{path}: a broken symbolic link (to {path.readlink()}); point it at an image or remove it")
    try:
        with PIL.Image.open(path) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise ValueError(f"{opened.width}x{opened.height} pixels, more than the {MAX_PIXELS // 10 ** 6} "
                                 "megapixels explain decodes (a few KB of PNG can unpack to gigabytes); shrink it first")
            opened.load()  # a truncated or corrupt file fails here, not later
            image = PIL.ImageOps.exif_transpose(opened)
            if image.mode in ("I", "F") or image.mode.startswith("I;16"):
                image = _grey(image)
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as err:
        reason = "not an image" if isinstance(err, PIL.UnidentifiedImageError) else \
            str(err) if type(err) is ValueError else f"{type(err).__name__}: {err}"
        raise ValueError(f"{path}: {reason}; give a JPEG, PNG, WebP or BMP image") from None
    if image.mode == "P":
        image = image.convert("RGBA")  # a palette may hold transparency
    if image.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        white = PIL.Image.new("RGBA", image.size, (255, 255, 255, 255))
        return PIL.Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def find_images(paths) -> list[Path]:
    """Every file under `paths` (files, and folders searched recursively; hidden files and folders left
    out; broken symbolic links kept, so that they are reported), once each, in order. A path that does not
    exist is a FileNotFoundError naming it."""
    files: dict = {}
    for path in map(Path, [paths] if isinstance(paths, (str, Path)) else paths):
        if not path.exists() and not path.is_symlink():
            raise FileNotFoundError(f"--images: no such file or folder {path}; give image files or folders")
        hidden = lambda p: any(part.startswith(".") for part in p.relative_to(path).parts)  # noqa: E731
        found = [path] if not path.is_dir() else sorted(
            p for p in path.rglob("*") if (p.is_file() or (p.is_symlink() and not p.exists())) and not hidden(p))
        files.update((p.resolve(), p) for p in found if p.resolve() not in files)
    return list(files.values())


def read_classes(path) -> list[str]:
    """Class names, one per line of the text file at path (blank lines left out)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--classes: no such file {path}; give a text file with one class name per line")
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise UsageError(f"--classes: {path} is not UTF-8 text; give a text file with one class name per "
                         "line") from None
    if not names:
        raise UsageError(f"--classes: {path} holds no names; give one class name per line")
    return names


# ---- the run: every option checked before any image is read ------------------------------------------

@dataclass
class _Run:
    """What one run explains with: the model (on device), the layer (None: decided on the first batch),
    methods and top classes (None: 3 or the model's number of classes, decided on the first batch), the preprocessing, the class names
    (None: decided on the first batch) and how logits become probabilities."""
    model: nn.Module
    layer: str | None
    methods: list
    top: int | None
    preprocess: Preprocess
    class_names: list | None
    prob: str
    device: torch.device
    label: str  # how the gallery names the model
    names_from: str = ""  # where the class names come from, for a message


def _method_names(names) -> list[str]:
    """--methods as names of minicam.methods.METHODS; case, spaces and hyphens do not matter (gradcam++)."""
    key = lambda name: "".join(ch for ch in name.lower() if ch.isalnum() or ch == "+")  # noqa: E731
    known = {key(name): name for name in METHODS}
    unknown = [name for name in names if key(name) not in known]
    if unknown:
        raise UsageError(f"--methods: unknown {unknown}; choose from {list(METHODS)} (e.g. gradcam gradcam++ cam)")
    return list(dict.fromkeys(known[key(name)] for name in names))


def _numbers(values, option: str, positive: bool = False) -> tuple:
    if not all(math.isfinite(v) and (v > 0 or not positive) for v in values):
        raise UsageError(f"{option} must be three finite numbers{' > 0' if positive else ''}, one per colour channel "
                         f"(R, G, B), got {values}")
    return tuple(values)


def _preprocess(args, kind: str, weights) -> Preprocess:
    """The weights' own transforms, the shapes models' [0, 1] 64x64 input, or --size/--mean/--std."""
    if args.size is None and args.mean is None and args.std is None:
        if weights is not None:
            t = weights.transforms()
            if not all(hasattr(t, name) for name in ("crop_size", "resize_size", "mean", "std")):
                raise UsageError(f"--weights: {weights} are not image-classification weights; give another")
            crop = t.crop_size[0] if len(t.crop_size) == 1 else tuple(t.crop_size)
            return Preprocess(crop, tuple(t.mean), tuple(t.std), t.resize_size[0], t.interpolation)
        if kind == "shapes":
            return Preprocess(SHAPES_SIZE, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    size = args.size or [SHAPES_SIZE if kind == "shapes" else 224]
    if len(size) > 2 or not all(1 <= s <= MAX_SIDE for s in size):
        raise UsageError(f"--size must be S or H W, whole numbers of pixels from 1 to {MAX_SIDE} (the model's input, "
                         f"e.g. 224), got {' '.join(map(str, size))}")
    return Preprocess(size[0] if len(size) == 1 else tuple(size), _numbers(args.mean or IMAGENET_MEAN, "--mean"),
                      _numbers(args.std or IMAGENET_STD, "--std", positive=True))


def _class_names(args, kind: str, weights) -> list[str] | None:
    """--classes, the weights' categories or the shapes classes; None: class 0, 1, ... as the model has outputs."""
    if args.classes is not None:
        return read_classes(args.classes)
    if weights is not None:
        return list(weights.meta["categories"])
    return list(CLASSES) if kind == "shapes" else None


def _device(text) -> torch.device:
    """--device as a device this machine has, for the model's parameters and the images."""
    if text is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise UsageError(f"--device: {text!r} is not a device; give {DEVICES}") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available()}
    if not available.get(device.type):
        why = "has no data (it is for shape checks)" if device.type == "meta" else "is not available here"
        raise UsageError(f"--device: {text} {why}; give {DEVICES}")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"--device: {text}: this machine has {torch.cuda.device_count()} CUDA devices; give {DEVICES}")
    return device


def _setup(args) -> _Run:
    """The run the parsed options describe, every option checked that can be without running the model
    (the layer, the methods' fit and the number of classes are decided on the first batch)."""
    whole_number(args.batch_size, "--batch-size", 1, want="a positive whole number (images per pass)")
    if args.top is not None and args.top < 1:
        raise UsageError(f"--top must be a positive whole number of classes, got {args.top}")
    device = _device(args.device)
    methods = _method_names(args.methods)
    if args.list_layers:  # the layers need no weights
        (model, kind), weights = build_model(args.model), None
        model = _runnable(model, args.model)
    else:
        model, kind, weights = load_model(args.model, args.weights, args.trust_checkpoint, args.allow_download,
                                          args.quiet)
    if args.layer is not None and args.layer not in dict(model.named_modules()):
        close = difflib.get_close_matches(args.layer, [n for n, _ in model.named_modules() if n], n=6)
        raise UsageError(f"--layer: {args.layer!r} not found; the model's modules include {close} "
                         "(--list-layers lists those that can be explained)")
    preprocess = _preprocess(args, kind, weights)
    prob = args.prob or ("sigmoid" if kind == "shapes" else "softmax")
    names = _class_names(args, kind, weights)
    names_from = f"--classes: {args.classes} has" if args.classes else f"--weights: {weights} have" if weights else ""
    top = args.top if args.top is not None else min(3, len(names)) if names else None  # None: decided on the first batch
    if names and top > len(names):
        raise UsageError(f"--top must be between 1 and the model's {len(names)} classes, got {top}")
    return _Run(model.eval().to(device), args.layer, methods, top, preprocess, names, prob, device, args.model,
                names_from)


def _first_batch(run: _Run, x: torch.Tensor) -> tuple:
    """The first real batch's maps, and what they decide before anything is written: the layer (the
    default, or that --layer is one a map can be taken at: one pass on one image), the number of classes
    (against --classes and --top), that every method applies (its NotApplicable, by name) and that the
    model runs on a batch of this size."""
    try:
        if run.layer is None:
            run.layer = default_layer(run.model, x[:1])
        elif run.layer not in (layers := explainable_layers(run.model, x[:1])):
            close = difflib.get_close_matches(run.layer, layers, n=6, cutoff=0.0)
            raise UsageError(f"--layer: {run.layer!r} cannot be used: it does not output (N, K, h, w) maps once per "
                             f"pass; choose one of the model's map layers, e.g. {close} (--list-layers lists them all)")
    except NotApplicable as err:
        raise UsageError(f"--layer: {err}") from None
    except (RuntimeError, ValueError, TypeError) as err:  # the user's model, on the user's images
        raise UsageError(_broken_weights(run.model) or f"--model: the model cannot run on a {run.preprocess.size[0]}x{run.preprocess.size[1]} RGB "
                         f"image ({_first_line(err)}); give --size the input size it was built for") from None
    try:
        scores, top, maps = _batch_maps(run, x)
    except NotApplicable as err:
        raise UsageError(f"--methods: {err.method} does not apply here: {err}") from None
    except (RuntimeError, ValueError) as err:
        raise UsageError(_broken_weights(run.model) or f"--model: the model fails on a batch of {len(x)} images "
                         f"({_first_line(err)}); try --batch-size 1, or check the model") from None
    count = scores.shape[1]
    if run.class_names is None:
        run.class_names = [f"class {k}" for k in range(count)]
    elif len(run.class_names) != count:
        raise UsageError(f"{run.names_from} {len(run.class_names)} classes, but the model gives {count} scores per "
                         "image; give one name per output, in the order of the outputs")
    if run.top is None:
        run.top = min(3, count)
    elif run.top > count:
        raise UsageError(f"--top must be between 1 and the model's {count} classes, got {run.top}")
    return scores, top, maps


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


# ---- the maps of a batch, and what is written for each image ------------------------------------------

@dataclass
class _Item:
    """One image being explained: its file, the name of its outputs, its size (H, W) and what the model sees."""
    path: Path
    name: str
    size: tuple
    view: torch.Tensor


def _flat(raw: torch.Tensor) -> torch.Tensor:
    """A raw map (h, w) as it is; an input map (C, H, W) as its largest absolute value over the channels."""
    return raw.abs().amax(dim=0) if raw.dim() == 3 else raw


def _peaks(raws: torch.Tensor, size) -> list:
    """For each raw map of raws (T, ...), (row, col) of the largest value of the map upsampled (bilinear) to the
    input's size (H, W); None for a flat map (all zeros, say), which points nowhere (minicam.metrics.peak)."""
    flat = raws.abs().amax(dim=1) if raws.dim() == 4 else raws
    return [peak(m) for m in upsample(flat.float(), size)]


def _batch_maps(run: _Run, x: torch.Tensor) -> tuple:
    """(scores (N, C), top classes (N, T), {method: raw maps (N, T, ...)}) of a batch: the CAM family from
    one capture whose forward pass also chose each image's top classes; each other method by its own call
    with that (N, T) target. A method that does not apply raises NotApplicable, its name as err.method."""
    family = [m for m in run.methods if METHODS[m].weights is not None]
    best = lambda scores: scores.topk(min(run.top or 3, scores.shape[1]), dim=1).indices  # noqa: E731
    cap = None
    try:
        if family:  # one forward pass: its scores choose the classes whose gradients the capture takes
            cap = capture(run.model, x, best, run.layer)
            top = cap.targets.view(len(x), -1)
            scores = cap.scores[::top.shape[1]]
        else:
            scores, _ = forward_acts(run.model, x, [])
            top = best(scores)
    except NotApplicable as err:
        err.method = family[0]
        raise
    maps = {}
    for name in run.methods:
        try:
            maps[name] = METHODS[name].from_capture(run.model, run.layer, cap, top) if name in family \
                else METHODS[name](run.model, x, top, run.layer)
        except NotApplicable as err:
            err.method = name
            raise
    return scores.cpu(), top.cpu(), {name: m.detach().float().cpu() for name, m in maps.items()}


def _rows(run: _Run, scores, top) -> list:
    """(rank, class index, name, logit, probability) of an image's top classes."""
    probs = torch.sigmoid(scores) if run.prob == "sigmoid" else torch.softmax(scores, dim=0)
    return [(rank, k, run.class_names[k], scores[k].item(), probs[k].item()) for rank, k in enumerate(top.tolist(), 1)]


def _csv_rows(run: _Run, item: _Item, rows: list, maps: dict) -> list:
    """The CSV rows of one image: one per (class, method), with the map's peak in the image's pixels."""
    out, peaks = [], {method: _peaks(maps[method], run.preprocess.size) for method in run.methods}
    for t, (rank, k, name, logit, p) in enumerate(rows):
        for method in run.methods:
            at = peaks[method][t]
            row, col = run.preprocess.to_image(*at, item.size) if at else ("", "")
            layer = run.layer if METHODS[method].needs_layer else "input"
            out.append([str(item.path), rank, name, k, f"{logit:.6g}", f"{p:.6g}", method, layer, row, col])
    return out


# ---- the picture: colour maps and text composited on arrays, one PNG by Pillow -------------------------

# matplotlib's "jet" (its segment data), so that the pictures read as the notebooks' do
_JET = {0: ((0, 0), (0.35, 0), (0.66, 1), (0.89, 1), (1, 0.5)),
        1: ((0, 0), (0.125, 0), (0.375, 1), (0.64, 1), (0.91, 0), (1, 0)),
        2: ((0, 0.5), (0.11, 1), (0.34, 1), (0.65, 0), (1, 0))}
_LEVELS = np.linspace(0, 1, 256)
JET8 = np.rint(255 * np.stack([np.interp(_LEVELS, *zip(*_JET[c])) for c in range(3)], axis=1)).astype(np.uint8)
WRITERS = 2  # threads drawing and writing pictures while the model works (numpy, zlib and Pillow release the GIL)
TEXT, GAP, BAR = 30, 10, 12  # pixels: two lines of title, space between cells, colour bar width


def _font(size: int = 11):
    try:
        return PIL.ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: its fixed bitmap font
        return PIL.ImageFont.load_default()


FONT, TITLE_FONT = _font(11), _font(13)


def _colours(values: torch.Tensor) -> np.ndarray:
    """values in [0, 1] (h, w) as jet colours (h, w, 3), uint8."""
    return JET8[(values * 255).round().clamp(0, 255).to(torch.long).numpy()]


def _cell_scale(size) -> float:
    """How much a cell enlarges (small inputs, by a whole factor) or shrinks (large ones) the model's view:
    its longer side 128..160 pixels, as the notebooks' figures show an image (PNG encoding costs by the pixel)."""
    longest = max(size)
    return max(1, 128 // longest) if longest < 128 else min(1.0, 128 / longest)


def _fit(text: str, width: int, font) -> str:
    """text cut to width pixels (with an ellipsis), so that a long class name stays over its own cell."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _picture(run: _Run, item: _Item, rows: list, maps: dict) -> PIL.Image.Image:
    """One row per top class: its name and probability (over the input as the model sees it, in the first
    row), then for each method its map on the image (min-max normalised, jet, alpha 0.5: minicam.viz.overlay's
    picture) and the raw map with a colour bar of its own range (minicam.viz.show_map's). Arrays of uint8 in,
    one PIL image out."""
    height, width = run.preprocess.size
    scale = _cell_scale((height, width))
    ch, cw = max(1, round(height * scale)), max(1, round(width * scale))
    view = PIL.Image.fromarray((item.view * 255).round().to(torch.uint8).permute(1, 2, 0).numpy())
    view = np.asarray(view if scale == 1 else view.resize((cw, ch), PIL.Image.NEAREST if scale > 1 else PIL.Image.BILINEAR))
    label = int(max(FONT.getlength("-0.000e+00"), 40))
    total_w = GAP + (cw + GAP) * (1 + len(run.methods)) + (cw + BAR + 4 + label + GAP) * len(run.methods)
    canvas = np.full((28 + len(rows) * (TEXT + ch + GAP) + GAP, total_w, 3), 255, dtype=np.uint8)
    bar = _colours(torch.linspace(1, 0, ch))[:, None, :].repeat(BAR, axis=1)
    texts = [(GAP, 6, f"{item.path.name} ({item.size[1]}x{item.size[0]})", TITLE_FONT)]
    for r, (rank, _, name, _, p) in enumerate(rows):
        top, left = 28 + r * (TEXT + ch + GAP), GAP
        cells = slice(top + TEXT, top + TEXT + ch)
        if r == 0:
            canvas[cells, left:left + cw] = view
        texts += [(left, top, _fit(f"{rank}. {name}", cw, FONT), FONT), (left, top + 14, f"{run.prob} {p:.3f}", FONT)]
        left += cw + GAP
        for method in run.methods:
            raw = _flat(maps[method][r])
            heat = _colours(normalize(upsample(raw, (ch, cw))))
            canvas[cells, left:left + cw] = ((view.astype(np.uint16) + heat) >> 1).astype(np.uint8)
            texts += [(left, top, _fit(f"{method}: {name}", cw, FONT), FONT), (left, top + 14, f"{p:.3f}", FONT)]
            left += cw + GAP
            cell = PIL.Image.fromarray(_colours(normalize(raw))).resize((cw, ch), PIL.Image.NEAREST)
            canvas[cells, left:left + cw] = np.asarray(cell)
            canvas[cells, left + cw + 4:left + cw + 4 + BAR] = bar
            where = f"at {run.layer}" if METHODS[method].needs_layer else \
                "max |value| of RGB" if maps[method][r].dim() == 3 else ""
            texts += [(left, top, f"raw map {raw.shape[0]}x{raw.shape[1]}", FONT), (left, top + 14, _fit(where, cw, FONT), FONT),
                      (left + cw + BAR + 6, top + TEXT, f"{raw.max().item():.3g}", FONT),
                      (left + cw + BAR + 6, top + TEXT + ch - 12, f"{raw.min().item():.3g}", FONT)]
            left += cw + BAR + 4 + label + GAP
    picture = PIL.Image.fromarray(canvas)
    draw = PIL.ImageDraw.Draw(picture)
    for x, y, text, font in texts:
        draw.text((x, y), text, fill=(0, 0, 0), font=font)
    return picture


def _png(rgb: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 array as a PNG file: every row filtered "up" (its difference to the row above, PNG
    filter 2) and deflated with zlib's run-length strategy -- twice as fast as Pillow's adaptive filters at
    zlib's fastest level, and as small, for pictures of flat cells and photographs."""
    height, width, _ = rgb.shape
    rows = rgb.reshape(height, -1)
    up = rows.copy()
    up[1:] -= rows[:-1]  # uint8 arithmetic wraps modulo 256, as the filter is defined
    packer = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    data = packer.compress(np.concatenate([np.full((height, 1), 2, np.uint8), up], axis=1).tobytes()) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits per channel, RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def _write_item(run: _Run, item: _Item, out: Path, rows: list, maps: dict, scores, top, save_maps: bool) -> list:
    """The PNG and (with save_maps) the raw maps of one image, each written atomically; returns its CSV rows."""
    csv_rows = _csv_rows(run, item, rows, maps)
    png = _png(np.asarray(_picture(run, item, rows, maps)))
    write_atomic(out / f"{item.name}.png", lambda f: f.write(png))
    if save_maps:
        probs = torch.tensor([p for *_, p in rows])
        write_atomic(out / f"{item.name}.pt", lambda f: torch.save(
            {"image": str(item.path), "size": item.size, "layer": run.layer, "classes": top.tolist(),
             "class_names": [name for _, _, name, _, _ in rows], "logits": scores[top], "probabilities": probs,
             "maps": maps}, f))
    return csv_rows


def _output_names(files) -> dict:
    """A distinct name (the file's stem, then -2, -3, ...) for each file's outputs."""
    used, names = {"maps", "index"}, {}
    for path in files:
        name, n = path.stem or "image", 1
        while name.lower() in used:  # case-insensitive file systems
            n += 1
            name = f"{path.stem}-{n}"
        used.add(name.lower())
        names[path] = name
    return names


def _gallery(out: Path, title: str, done: list, skipped: list, interrupted: bool) -> None:
    """index.html: every figure with its top classes, the skipped files, a link to the CSV (relative links)."""
    cards = []
    for item, rows in done:
        link = quote(f"{item.name}.png")
        classes = "<br>".join(f"{rank}. {html.escape(name)} ({p:.3f})" for rank, _, name, _, p in rows)
        cards.append(f'<figure><a href="{link}"><img src="{link}" alt="{html.escape(item.path.name)}"></a>'
                     f"<figcaption><b>{html.escape(str(item.path))}</b><br>{classes}</figcaption></figure>")
    problems = "".join(f"<li>{html.escape(str(path))}: {html.escape(reason)}</li>" for path, reason in skipped)
    page = (f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif;margin:1em}figure{margin:0 0 2em}img{max-width:100%;border:1px solid #ccc}"
            f"</style></head><body><h1>{html.escape(title)}</h1>"
            + ("<p><b>Interrupted</b> (Ctrl-C): the images below are those finished before it.</p>" if interrupted else "")
            + f"<p>{len(done)} images; every map's peak, logit and probability: <a href='maps.csv'>maps.csv</a></p>"
            + (f"<p>Skipped {len(skipped)} files:</p><ul>{problems}</ul>" if skipped else "")
            + "\n".join(cards) + "</body></html>\n")
    write_atomic(out / "index.html", lambda f: f.write(page.encode("utf-8")))


def _write_csv(out: Path, rows: list) -> None:
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    write_atomic(out / "maps.csv", lambda f: f.write(text.getvalue().encode("utf-8")))


def _read(run: _Run, paths: list, names: dict, skipped: list, said: list) -> list:
    """The images of `paths` that load, as _Items; the others appended to skipped, and what to say on
    stderr about them (and about odd files that did load) to `said`."""
    batch = []
    for path in paths:
        notes: list = []
        try:
            with quiet_warnings(PROG, notes):
                image = load_image(path)
        except ValueError as err:
            skipped.append((path, str(err).split(": ", 1)[-1]))
            said.append(f"{PROG}: skipped {err}")
            continue
        said += [f"{PROG}: note: {path}: {note}" for note in notes]
        batch.append(_Item(path, names[path], (image.height, image.width), run.preprocess.view(image)))
    return batch


def _explain(run: _Run, args, files: list, folder: OutputFolder) -> int:
    """Every image explained in batches, each picture drawn and written by a second thread while the model
    works on the next batch; the CSV and the gallery written at the end, or of the images done when Ctrl-C
    stops the run. The first batch decides the layer and the methods' fit before anything is written."""
    names, skipped, done, csv_rows, pending, said = _output_names(files), [], [], [], [], []
    bar = tqdm(total=len(files), unit="image", file=sys.stderr, disable=args.quiet or not sys.stderr.isatty())
    writer, out, interrupted = ThreadPoolExecutor(max_workers=WRITERS), None, False
    try:
        for start in range(0, len(files), args.batch_size):
            paths = files[start:start + args.batch_size]
            batch = _read(run, paths, names, skipped, said)
            bar.update(len(paths))
            if batch and out is None:  # the first batch decides, before anything is written or said
                x = torch.stack([run.preprocess.normalize(item.view) for item in batch]).to(run.device)
                scores, top, maps = _first_batch(run, x)
                out = folder.open()
            elif batch:
                x = torch.stack([run.preprocess.normalize(item.view) for item in batch]).to(run.device)
                scores, top, maps = _batch_maps(run, x)
            if out is not None:
                for line in said:
                    tqdm.write(line, file=sys.stderr)
                said.clear()
            if not batch:
                continue
            for i, item in enumerate(batch):
                rows, own = _rows(run, scores[i], top[i]), {m: v[i] for m, v in maps.items()}
                pending.append((item, rows, writer.submit(_write_item, run, item, out, rows, own, scores[i], top[i],
                                                          args.save_maps)))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
        writer.shutdown(wait=True, cancel_futures=interrupted)  # on Ctrl-C: the picture being written finishes
        for item, rows, future in pending:
            if not future.cancelled() and future.exception() is None:
                done.append((item, rows))
                csv_rows += future.result()
        if out is not None:  # a gallery of what finished, also when an error stops the run
            _write_csv(out, csv_rows)
            _gallery(out, f"{PROG}: {run.label}, {', '.join(run.methods)} at {run.layer}", done, skipped, interrupted)
    failed = [future.exception() for *_, future in pending if not future.cancelled() and future.exception()]
    if failed:
        raise failed[0]
    if interrupted:
        raise KeyboardInterrupt(f"explained {len(done)} of {len(files)} images; {out / 'index.html'} and "
                                f"{out / 'maps.csv'} show those" if out else "")
    if out is None:  # every file skipped: the gallery says so
        for line in said:
            print(line, file=sys.stderr)
        out = folder.open()
        _write_csv(out, csv_rows)
        _gallery(out, f"{PROG}: {run.label}, {', '.join(run.methods)}", done, skipped, False)
    if not args.quiet:
        print(f"explained {len(done)} of {len(files)} images ({len(skipped)} skipped); wrote {out / 'index.html'}, "
              f"{out / 'maps.csv'} and a PNG per image")
    return 1 if skipped else 0


# ---- the command line ----------------------------------------------------------------------------------

def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0].strip("`"),
                                     epilog="Exit status: 0 every image explained, 1 some files skipped, 2 a usage "
                                            "error, 130 interrupted.")
    parser.add_argument("--model", required=True,
                        help="torchvision model name, shipped shapes model, or package.module:function")
    parser.add_argument("--weights",
                        help="state_dict file, or a torchvision weights name (IMAGENET1K_V1) in torch's cache")
    parser.add_argument("--images", nargs="+", metavar="PATH", help="image files and folders (searched recursively)")
    parser.add_argument("--layer", help="the layer to explain (default: the last one with spatial maps)")
    parser.add_argument("--list-layers", action="store_true", help="print the layers that can be explained, and stop")
    parser.add_argument("--methods", nargs="+", default=["Grad-CAM"], metavar="METHOD",
                        help=f"from {list(METHODS)} (default Grad-CAM; case and hyphens do not matter: gradcam++)")
    parser.add_argument("--top", type=int, help="how many of each image's best classes to explain (default 3)")
    parser.add_argument("--out", default="explained", help="output folder (default: explained)")
    parser.add_argument("--classes", help="text file with one class name per line, in the order of the outputs")
    parser.add_argument("--size", type=int, nargs="+", metavar="PIXELS", help="input size: S, or H W (default 224)")
    parser.add_argument("--mean", type=float, nargs=3, help="per-channel mean to subtract (default ImageNet's)")
    parser.add_argument("--std", type=float, nargs=3, help="per-channel std to divide by (default ImageNet's)")
    parser.add_argument("--prob", choices=PROBS, help="softmax (single-label; default) or sigmoid (multi-label; "
                        "default for the shapes models)")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow a whole pickled model in --weights (unpickling runs code from the file)")
    parser.add_argument("--allow-download", action="store_true", help="let torchvision download named weights")
    parser.add_argument("--save-maps", action="store_true", help="also save the raw maps, one .pt file per image")
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default 8)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available, else cpu)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    return parser


def _list_layers(run: _Run) -> None:
    """Every layer --layer can name (a (N, K, h, w) output, once per pass), the default marked."""
    blank = torch.zeros(1, 3, *run.preprocess.size, device=run.device)
    modules = dict(run.model.named_modules())
    default = run.layer or default_layer(run.model, blank)
    for name in explainable_layers(run.model, blank):
        mark = "  <- default" if name == default else ""
        print(f"{name:<30} {type(modules[name]).__name__:<20}{mark}")


def main(argv=None, prog: str = PROG) -> int:
    """The command line: 0 if every image was explained, 1 if some files were skipped (each named on
    stderr), 130 if Ctrl-C stopped it (the gallery shows the images done); a usage error exits with
    status 2 and one message, before anything is written."""
    parser = _parser(prog)
    args = parser.parse_args(argv)
    folder = None
    try:
        with quiet_warnings(prog):
            try:
                files, folder = ([], None) if args.list_layers else _files(args)
                run = _setup(args)
            except (OSError, ValueError, TypeError) as err:  # an option's file missing, a number out of range
                raise UsageError(str(err)) from None
            if args.list_layers:
                _list_layers(run)
                return 0
            return _explain(run, args, files, folder)
    except UsageError as err:
        parser.error(str(err))
    except KeyboardInterrupt as stop:
        print(f"{prog}: interrupted{': ' + str(stop) if str(stop) else ' before anything was written'}",
              file=sys.stderr)
        return INTERRUPTED
    finally:
        if folder is not None:
            folder.close()


def _files(args) -> tuple[list[Path], OutputFolder]:
    """The files of --images (at least one), and --out checked against them (made only when used)."""
    if not args.images:
        raise UsageError("--images: give one or more image files or folders (or --list-layers)")
    folder = OutputFolder(args.out, args.images)
    files = find_images(args.images)
    if not files:
        raise UsageError(f"--images: no files in {' '.join(args.images)}; give image files or folders holding some")
    return files, folder


if __name__ == "__main__":
    sys.exit(main())
