"""`python -m minicam.explain`: the maps of your own model on your own images, as a gallery.

    python -m minicam.explain --model resnet50 --weights IMAGENET1K_V2 --images photos/ --top 3
    python -m minicam.explain --model mypackage.nets:build --weights run7.pt --classes classes.txt --images val/

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
method) in maps.csv with the logit, the probability and the map's peak in the original image's pixels;
with --save-maps the raw maps, one .pt file per image; index.html, a gallery of it all. The top classes'
maps come from one forward pass and one backward pass per class (a (N, T) target, see minicam.methods).

Exit status: 0 every image explained, 1 some files skipped (each named on stderr), 2 a usage error.
"""
from __future__ import annotations

import argparse
import csv
import difflib
import html
import importlib
import math
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlparse

import matplotlib
import PIL.Image
import PIL.ImageOps
import torch
import torchvision
import torchvision.transforms.functional as TF
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn
from torchvision.transforms import InterpolationMode
from tqdm import tqdm

from . import models
from .checks import NotApplicable, pixel_size, resolve_layer, whole_number
from .data import CLASSES
from .evaluate import method_maps, probe_out
from .gradients import last_linear
from .hooks import forward_acts, trace
from .maps import upsample
from .methods import METHODS
from .viz import overlay, show_map, to_rgb
from .widgets import default_layers

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SHAPES_SIZE = 64  # the shipped shapes models were trained on 64x64 images in [0, 1]
PROBS = ("softmax", "sigmoid")
CSV_COLUMNS = ("image", "rank", "class", "class_index", "logit", "probability", "method", "layer",
               "peak_row", "peak_col")


# ---- the model and its weights --------------------------------------------------------------------

def build_model(spec: str) -> tuple[nn.Module, str]:
    """The untrained model `spec` names and its kind: "shapes" (a shipped shapes model), "torchvision"
    (a torchvision classification model), or "function" (package.module:function, called with no
    arguments, returning the model)."""
    if not isinstance(spec, str) or not spec:
        raise TypeError(f"--model must be a model's name or package.module:function, got {spec!r}")
    if spec in models.PRETRAINED:
        return models.create_model(spec), "shapes"
    if ":" in spec:
        return _built_by(spec), "function"
    names = torchvision.models.list_models(module=torchvision.models)  # the classification models
    if spec in names:
        return torchvision.models.get_model(spec, weights=None), "torchvision"
    close = difflib.get_close_matches(spec, names + list(models.PRETRAINED), n=4)
    raise ValueError(f"--model: unknown model {spec!r}{f' (did you mean {close}?)' if close else ''}; give a "
                     "torchvision classification model (e.g. resnet50, vgg16), a shipped one "
                     f"{list(models.PRETRAINED)}, or package.module:function that builds yours")


def _built_by(spec: str) -> nn.Module:
    """The model that the function `package.module:function` returns."""
    module_name, _, function = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"--model: cannot import {module_name!r} ({err}); give package.module:function with a "
                         "module importable from here (python -m puts the current directory on the path)") from None
    build = getattr(module, function, None)
    if not callable(build):
        raise ValueError(f"--model: {module_name} has no function {function!r}; give package.module:function")
    try:
        model = build()
    except Exception as err:  # noqa: BLE001 -- the user's code: say what failed, in one line
        raise ValueError(f"--model: {spec}() failed ({type(err).__name__}: {err}); the function must build "
                         "your model with no arguments") from None
    if not isinstance(model, nn.Module):
        raise TypeError(f"--model: {spec}() returned a {type(model).__name__}; it must return a torch.nn.Module")
    return model


def _checkpoint(path: Path, trust: bool):
    """What torch.save wrote to `path`: tensors only (weights_only=True), or with trust any pickle."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        pickled = "Weights only load failed" in str(err)  # torch's words for "more than tensors in here"
    except Exception:  # noqa: BLE001 -- a truncated or foreign file fails in many ways
        pickled = False
    if not pickled:
        raise ValueError(f"--weights: {path} is not a file torch.save wrote; give a state_dict file")
    if not trust:
        raise ValueError(f"--weights: {path} holds pickled objects (e.g. a whole saved model), not only tensors. "
                         "Loading it runs code stored in the file, which could do anything: pass "
                         "--trust-checkpoint only if you trust where it came from, or save model.state_dict() instead")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 -- e.g. a class the pickle names that cannot be imported here
        raise ValueError(f"--weights: {path} could not be unpickled ({type(err).__name__}: {err}); the classes it "
                         "names must be importable here, or give a state_dict file") from None


def _state_dict(obj, path) -> dict:
    """The state_dict in a checkpoint: itself, or under "state_dict"/"model_state_dict"/"model"; a
    "module." prefix (DataParallel) is taken off."""
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"--weights: {path} holds a {type(obj).__name__}, neither a state_dict (names -> tensors) "
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
        raise ValueError(f"--weights: {where} does not fit --model {what}: {'; '.join(found)}. Are these the "
                         f"weights of another architecture? Give --model the one they were saved from")
    model.load_state_dict(state)
    return model


def _fit_head(model: nn.Module, name: str, state: dict) -> nn.Module:
    """A torchvision model rebuilt with as many classes as the state's last linear layer (a fine-tuned head)."""
    try:
        key = f"{last_linear(model)}.weight"
    except NotApplicable:  # no nn.Linear (SqueezeNet's head is a conv): nothing to fit
        return model
    weight = state.get(key)
    if weight is None or weight.dim() != 2 or weight.shape[0] == model.state_dict()[key].shape[0]:
        return model
    return torchvision.models.get_model(name, weights=None, num_classes=weight.shape[0])


def _cached_weights(weights, allow_download: bool, quiet: bool) -> dict:
    """The state_dict of torchvision `weights` from torch's local cache; downloaded only if allowed."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name
    if path.is_file():
        return _state_dict(_checkpoint(path, trust=False), path)
    if not allow_download:
        raise FileNotFoundError(
            f"--weights: {weights} is not in torch's local cache: its file is expected at {path}. Nothing is "
            f"downloaded unless you ask: rerun with --allow-download (torchvision fetches {weights.url}), or "
            f"download that URL to that path yourself (the environment variable TORCH_HOME moves the cache)")
    try:
        return weights.get_state_dict(progress=not quiet, check_hash=True)
    except OSError as err:
        raise OSError(f"--allow-download: fetching {weights.url} failed ({err}); check the connection, or "
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
    None). Every problem is a ValueError, TypeError or OSError whose message names the option."""
    model, kind = build_model(spec)
    if weights is not None and not isinstance(weights, str):
        raise TypeError(f"--weights must be a file or a torchvision weights name, got {weights!r}")
    if weights is None:
        if kind == "torchvision":
            raise ValueError(f"--weights is needed for {spec}: a file, or one of its weights names "
                             f"{list(torchvision.models.get_model_weights(spec).__members__)}")
        return (models.load_pretrained(spec) if kind == "shapes" else model.eval()), kind, None
    named = _torchvision_weights(spec, weights) if kind == "torchvision" and not Path(weights).exists() else None
    if named is not None:
        state = _cached_weights(named, allow_download, quiet)
        return _load_state(_fit_head(model, spec, state), state, spec, str(named)).eval(), kind, named
    return _from_file(model, kind, spec, Path(weights), trust).eval(), kind, None


def _from_file(model: nn.Module, kind: str, spec: str, path: Path, trust: bool) -> nn.Module:
    """model with the weights in the file at path (a state_dict, or with trust a whole model)."""
    if not path.is_file():
        names = f" or a weights name {list(torchvision.models.get_model_weights(spec).__members__)}" \
            if kind == "torchvision" else ""
        raise FileNotFoundError(f"--weights: no such file {path}; give a state_dict file{names}")
    obj = _checkpoint(path, trust)
    if isinstance(obj, nn.Module):
        if type(obj) is not type(model):
            raise ValueError(f"--weights: {path} holds a whole {type(obj).__name__}, but --model {spec} builds a "
                             f"{type(model).__name__}; give --model the architecture of the saved model")
        return obj
    state = _state_dict(obj, path)
    return _load_state(_fit_head(model, spec, state) if kind == "torchvision" else model, state, spec, str(path))


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
        for name in ("mean", "std"):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or len(value) != 3 or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
                raise ValueError(f"{name} must be three finite numbers, one per colour channel (R, G, B), "
                                 f"got {value!r}")
        if not all(v > 0 for v in self.std):
            raise ValueError(f"std must be three numbers > 0, got {self.std!r}")
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


def load_image(path) -> PIL.Image.Image:
    """The image at path as RGB, upright (EXIF orientation applied): greyscale, palette and 16-bit images
    converted, transparent pixels put on white. A file that is not an image PIL can read, or is
    truncated or corrupt, is a ValueError naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no such file {path}; give an image file")
    try:
        with PIL.Image.open(path) as opened:
            opened.load()  # a truncated or corrupt file fails here, not later
            image = PIL.ImageOps.exif_transpose(opened)
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as err:
        reason = "not an image" if isinstance(err, PIL.UnidentifiedImageError) else f"{type(err).__name__}: {err}"
        raise ValueError(f"{path}: {reason}; give a JPEG, PNG, WebP or BMP image") from None
    if image.mode.startswith("I"):  # 16 or 32-bit greyscale: to 8 bits (convert would clip)
        image = image.point(lambda v: v / 256).convert("L")
    if image.mode == "P":
        image = image.convert("RGBA")  # a palette may hold transparency
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        white = PIL.Image.new("RGBA", image.size, (255, 255, 255, 255))
        return PIL.Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def find_images(paths) -> list[Path]:
    """Every file under `paths` (files, and folders searched recursively; hidden files and folders left
    out), once each, in order. A path that does not exist is an error naming it."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: dict = {}
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"--images: no such file or folder {path}; give image files or folders")
        hidden = lambda p: any(part.startswith(".") for part in p.relative_to(path).parts)  # noqa: E731
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and not hidden(p))
        files.update((p.resolve(), p) for p in found if p.resolve() not in files)
    return list(files.values())


def read_classes(path) -> list[str]:
    """Class names, one per line of the text file at path (blank lines left out)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--classes: no such file {path}; give a text file with one class name per line")
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise ValueError(f"--classes: {path} is not UTF-8 text; give a text file with one class name per "
                         "line") from None
    if not names:
        raise ValueError(f"--classes: {path} holds no names; give one class name per line")
    return names


# ---- the run: every option checked before any image is read ------------------------------------------

@dataclass
class _Run:
    """What one run explains with: the model (on device), the layer, methods and top classes, the
    preprocessing, the class names and how logits become probabilities."""
    model: nn.Module
    layer: str
    methods: list
    top: int
    preprocess: Preprocess
    class_names: list
    prob: str
    device: torch.device


def _method_names(names) -> list[str]:
    """--methods as names of minicam.methods.METHODS; case, spaces and hyphens do not matter (gradcam++)."""
    key = lambda name: "".join(ch for ch in name.lower() if ch.isalnum() or ch == "+")  # noqa: E731
    known = {key(name): name for name in METHODS}
    unknown = [name for name in names if key(name) not in known]
    if unknown:
        raise ValueError(f"--methods: unknown {unknown}; choose from {list(METHODS)} (e.g. gradcam gradcam++ cam)")
    return list(dict.fromkeys(known[key(name)] for name in names))


def _preprocess(args, kind: str, weights) -> Preprocess:
    """The weights' own transforms, the shapes models' [0, 1] 64x64 input, or --size/--mean/--std."""
    if args.size is None and args.mean is None and args.std is None:
        if weights is not None:
            t = weights.transforms()
            if not all(hasattr(t, name) for name in ("crop_size", "resize_size", "mean", "std")):
                raise ValueError(f"--weights: {weights} are not image-classification weights; give another")
            crop = t.crop_size[0] if len(t.crop_size) == 1 else tuple(t.crop_size)
            return Preprocess(crop, tuple(t.mean), tuple(t.std), t.resize_size[0], t.interpolation)
        if kind == "shapes":
            return Preprocess(SHAPES_SIZE, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    size = args.size or [SHAPES_SIZE if kind == "shapes" else 224]
    try:
        return Preprocess(size[0] if len(size) == 1 else tuple(size), tuple(args.mean or IMAGENET_MEAN),
                          tuple(args.std or IMAGENET_STD))
    except (TypeError, ValueError) as err:
        raise ValueError(f"--{err}") from None


def _class_names(args, kind: str, weights, count: int) -> list[str]:
    """--classes, the weights' categories, the shapes classes, or class 0, 1, ...; as many as the model has outputs."""
    if args.classes is not None:
        names, source = read_classes(args.classes), f"--classes: {args.classes} has"
    elif weights is not None:
        names, source = list(weights.meta["categories"]), f"--weights: {weights} have"
    elif kind == "shapes":
        names, source = list(CLASSES), "the shapes world has"
    else:
        return [f"class {k}" for k in range(count)]
    if len(names) != count:
        raise ValueError(f"{source} {len(names)} classes, but the model gives {count} scores per image; give one "
                         "name per output, in the order of the outputs")
    return names


def _check_layer(model, layer, x) -> str:
    """--layer (default: the explorer's, the last of minicam.widgets.default_layers): a layer that
    outputs (N, K, h, w) maps and runs once per forward pass."""
    found = trace(model, x)
    usable = [name for name in found.order if found.runs[name] == 1 and found.ndim[name] == 4]
    if layer is None:
        layers = default_layers(model, x)
        if not layers:
            raise ValueError("--layer: the model has no layer with (N, K, h, w) output that runs once; name one")
        return layers[-1]
    name = resolve_layer(model, layer)[0] if layer and layer in dict(model.named_modules()) else None
    if name not in usable:
        why = "cannot be used: it does not output (N, K, h, w) maps once per pass" if name else "not found"
        close = difflib.get_close_matches(layer, usable, n=6, cutoff=0.0)
        raise ValueError(f"--layer: {layer!r} {why}; choose one of the model's map layers, e.g. {close} "
                         "(--list-layers lists them all)")
    return name


def _check_methods(model, methods, x, layer) -> None:
    """Each method applies to this model at this layer (tried on one blank image), or a usage error."""
    for name in methods:
        try:
            METHODS[name](model, x, 0, layer)
        except ValueError as err:  # NotApplicable among them
            raise ValueError(f"--methods: {name} does not apply here: {err}") from None


def _device(text) -> torch.device:
    if text is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(f"--device: {text!r} is not a device; give cpu, cuda or cuda:1") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device: {text} asked for, but CUDA is not available here; give --device cpu")
    return device


def _setup(args) -> _Run:
    """The run the parsed options describe, every option checked (the model runs on a blank image)."""
    device = _device(args.device)
    if args.list_layers:  # the layers need no weights
        (model, kind), weights = build_model(args.model), None
    else:
        model, kind, weights = load_model(args.model, args.weights, args.trust_checkpoint, args.allow_download,
                                          args.quiet)
    preprocess = _preprocess(args, kind, weights)
    blank = torch.zeros(1, 3, *preprocess.size)
    try:
        scores, _ = forward_acts(model, blank, [])
    except RuntimeError as err:
        raise ValueError(f"--size: the model cannot run on a {preprocess.size[0]}x{preprocess.size[1]} RGB image "
                         f"({str(err).splitlines()[0]}); give the input size it was built for") from None
    layer = _check_layer(model, args.layer, blank)
    names = _class_names(args, kind, weights, scores.shape[1])
    top = whole_number(args.top if args.top is not None else min(3, len(names)), "--top", 1, floats=False,
                       want=f"a whole number of classes between 1 and the model's {len(names)}")
    if top > len(names):
        raise ValueError(f"--top must be between 1 and the model's {len(names)} classes, got {top}")
    methods = _method_names(args.methods)
    if not args.list_layers:
        _check_methods(model, methods, blank, layer)
    prob = args.prob or ("sigmoid" if kind == "shapes" else "softmax")
    return _Run(model.eval().to(device), layer, methods, top, preprocess, names, prob, device)


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


def _peak(raw: torch.Tensor, size) -> tuple[int, int]:
    """(row, col) of the largest value of the map upsampled (bilinear) to the input's size (H, W)."""
    up = upsample(_flat(raw).float(), size)
    return divmod(int(up.argmax()), size[1])


def _batch_maps(run: _Run, x: torch.Tensor) -> tuple:
    """(scores (N, C), top classes (N, T), {method: raw maps (N, T, ...)}): the scores choose each image's
    top classes, then each method gives their maps with one (N, T) target."""
    scores, _ = forward_acts(run.model, x, [])
    top = scores.topk(run.top, dim=1).indices
    maps = method_maps(run.model, x, top, run.layer, run.methods)
    for m in maps.values():
        if isinstance(m, Exception):
            raise m
    return scores.cpu(), top.cpu(), {name: m.detach().cpu() for name, m in maps.items()}


def _figure(run: _Run, item: _Item, rows: list, maps: dict) -> Figure:
    """One row per top class: the input as the model sees it (class and probability), then for each
    method its map on the image and the raw map with its colour bar."""
    columns = 1 + 2 * len(run.methods)
    with matplotlib.rc_context({"font.size": 8, "axes.titlesize": 9, "axes.titley": 1.0}):  # fixed: much faster
        width, height = 2.3 * columns, 2.3 * len(rows) + 0.4
        figure = Figure(figsize=(width, height), dpi=80)
        FigureCanvasAgg(figure)
        figure.subplots_adjust(left=0.01, right=1 - 0.5 / width, bottom=0.02, top=1 - 0.6 / height, wspace=0.3,
                               hspace=0.35)
        axes = figure.subplots(len(rows), columns, squeeze=False)
        for r, (rank, _, name, _, p) in enumerate(rows):
            axes[r, 0].imshow(to_rgb(item.view))
            axes[r, 0].axis("off")
            axes[r, 0].set_title(f"{rank}. {name}\n{run.prob} {p:.3f}")
            for m, method in enumerate(run.methods):
                raw = _flat(maps[method][r])
                where = f" at {run.layer}" if METHODS[method].needs_layer else ""
                overlay(item.view, raw, ax=axes[r, 1 + 2 * m], colorbar=False, title=f"{method}: {name}\n{p:.3f}")
                rgb = ", max |·| of RGB" if maps[method][r].dim() == 3 else ""
                show_map(raw, ax=axes[r, 2 + 2 * m], title=f"raw map {raw.shape[0]}×{raw.shape[1]}{where}{rgb}")
        figure.suptitle(f"{item.path.name} ({item.size[1]}×{item.size[0]})")
    return figure


def _write_item(run: _Run, item: _Item, out: Path, scores, top, maps: dict, writer, save_maps: bool) -> list:
    """The figure, the CSV rows and (with save_maps) the raw maps of one image; returns its rows
    (rank, class index, name, logit, probability) for the gallery."""
    probs = torch.sigmoid(scores) if run.prob == "sigmoid" else torch.softmax(scores, dim=0)
    rows = [(rank, k, run.class_names[k], scores[k].item(), probs[k].item()) for rank, k in enumerate(top.tolist(), 1)]
    for t, (rank, k, name, logit, p) in enumerate(rows):
        for method in run.methods:
            row, col = run.preprocess.to_image(*_peak(maps[method][t], run.preprocess.size), item.size)
            layer = run.layer if METHODS[method].needs_layer else "input"
            writer.writerow([str(item.path), rank, name, k, f"{logit:.6g}", f"{p:.6g}", method, layer, row, col])
    _figure(run, item, rows, maps).savefig(out / f"{item.name}.png", pil_kwargs={"compress_level": 3})
    if save_maps:
        torch.save({"image": str(item.path), "size": item.size, "layer": run.layer, "classes": top.tolist(),
                    "class_names": [name for _, _, name, _, _ in rows], "logits": scores[top],
                    "probabilities": probs[top], "maps": maps}, out / f"{item.name}.pt")
    return rows


def _output_names(files) -> dict:
    """A distinct name (the file's stem, then -2, -3, ...) for each file's outputs."""
    used, names = set(), {}
    for path in files:
        name, n = path.stem or "image", 1
        while name.lower() in used:  # case-insensitive file systems
            n += 1
            name = f"{path.stem}-{n}"
        used.add(name.lower())
        names[path] = name
    return names


def _gallery(out: Path, title: str, done: list, skipped: list) -> None:
    """index.html: every figure with its top classes, the skipped files, a link to the CSV (relative links)."""
    cards = []
    for item, rows in done:
        link = quote(f"{item.name}.png")
        classes = "<br>".join(f"{rank}. {html.escape(name)} ({p:.3f})" for rank, _, name, _, p in rows)
        cards.append(f'<figure><a href="{link}"><img src="{link}" alt="{html.escape(item.path.name)}"></a>'
                     f"<figcaption><b>{html.escape(str(item.path))}</b><br>{classes}</figcaption></figure>")
    problems = "".join(f"<li>{html.escape(str(path))}: {html.escape(reason)}</li>" for path, reason in skipped)
    (out / "index.html").write_text(
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:1em}figure{margin:0 0 2em}img{max-width:100%;border:1px solid #ccc}"
        f"</style></head><body><h1>{html.escape(title)}</h1><p>{len(done)} images; every map's peak, logit and "
        f"probability: <a href='maps.csv'>maps.csv</a></p>"
        + (f"<p>Skipped {len(skipped)} files:</p><ul>{problems}</ul>" if skipped else "")
        + "\n".join(cards) + "</body></html>\n", encoding="utf-8")


def _explain(run: _Run, args, files: list) -> int:
    """Every image explained in batches, the gallery written; 1 if any file was skipped, else 0."""
    out, names = Path(args.out), _output_names(files)
    out.mkdir(parents=True, exist_ok=True)
    done, skipped = [], []
    bar = tqdm(total=len(files), unit="image", file=sys.stderr, disable=args.quiet or not sys.stderr.isatty())
    with open(out / "maps.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for start in range(0, len(files), args.batch_size):
            batch = []
            for path in files[start:start + args.batch_size]:
                try:
                    image = load_image(path)
                except ValueError as err:
                    skipped.append((path, str(err).split(": ", 1)[-1]))
                    tqdm.write(f"minicam.explain: skipped {err}", file=sys.stderr)
                    continue
                batch.append(_Item(path, names[path], (image.height, image.width), run.preprocess.view(image)))
            if batch:
                x = torch.stack([run.preprocess.normalize(item.view) for item in batch]).to(run.device)
                scores, top, maps = _batch_maps(run, x)
                done += [(item, _write_item(run, item, out, scores[i], top[i], {m: v[i] for m, v in maps.items()},
                                            writer, args.save_maps)) for i, item in enumerate(batch)]
            bar.update(len(files[start:start + args.batch_size]))
    bar.close()
    _gallery(out, f"minicam.explain: {args.model}, {', '.join(run.methods)} at {run.layer}", done, skipped)
    if not args.quiet:
        print(f"explained {len(done)} of {len(files)} images ({len(skipped)} skipped); wrote {out / 'index.html'}, "
              f"{out / 'maps.csv'} and a PNG per image")
    return 1 if skipped else 0


# ---- the command line ----------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m minicam.explain", description=__doc__.split("\n\n")[0],
                                     epilog="Exit status: 0 every image explained, 1 some files skipped, 2 a usage "
                                            "error.")
    parser.add_argument("--model", required=True,
                        help="torchvision model name, shipped shapes model, or package.module:function")
    parser.add_argument("--weights",
                        help="state_dict file, or a torchvision weights name (IMAGENET1K_V1) in torch's cache")
    parser.add_argument("--images", nargs="+", metavar="PATH", help="image files and folders (searched recursively)")
    parser.add_argument("--layer", help="the layer to explain (default: the last conv block, as the explorer's)")
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
    found, modules = trace(run.model, blank), dict(run.model.named_modules())
    for name in found.order:
        if found.runs[name] == 1 and found.ndim[name] == 4:
            mark = "  <- default" if name == run.layer else ""
            print(f"{name:<30} {type(modules[name]).__name__:<20} {found.means[name].shape[1]:>5} channels{mark}")


def main(argv=None) -> int:
    """The command line: 0 if every image was explained, 1 if some files were skipped (each named on
    stderr); a usage error exits with status 2 and one message, before any image is read."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        whole_number(args.batch_size, "--batch-size", 1, want="a positive whole number (images per pass)")
        files = [] if args.list_layers else _files(args)
        run = _setup(args)
    except (ValueError, TypeError, OSError) as err:
        parser.error(str(err))
    if args.list_layers:
        _list_layers(run)
        return 0
    return _explain(run, args, files)


def _files(args) -> list[Path]:
    """The files of --images (at least one), with --out probed first."""
    if not args.images:
        raise ValueError("--images: give one or more image files or folders (or --list-layers)")
    probe_out(args.out)
    files = find_images(args.images)
    if not files:
        raise ValueError(f"--images: no files in {' '.join(args.images)}; give image files or folders holding some")
    return files


if __name__ == "__main__":
    sys.exit(main())
