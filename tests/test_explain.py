"""`minicam explain` (python -m minicam explain) on a folder of real files: a photograph, a greyscale PNG, an RGBA PNG, a
rotated-EXIF JPEG, a corrupt file and a text file. The good images are explained (PNG, CSV, gallery) and
the CSV's numbers are the direct minicam calls on the same preprocessed tensors; the bad files are named
and skipped; every bad argument is one clear message and exit status 2. Offline: the weights are random
ones saved to a temporary file (or put where torch's cache would keep a download)."""
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.cbook
import numpy as np
import PIL.Image
import pytest
import torch
import torchvision

import minicam
from minicam.apps import explain
from minicam.apps.explain import IMAGENET_MEAN, IMAGENET_STD, Preprocess, find_images, load_image, main

PHOTO = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))  # 512 x 600, a real photograph
GOOD = ("grace_hopper.jpg", "grey.png", "rgba.png", "rotated.jpg", "more/palette.png")
BAD = ("corrupt.jpg", "notes.txt")


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    """A torchvision ResNet-18 with random (seeded) weights, and the file its state_dict is saved in."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    path = tmp_path_factory.mktemp("weights") / "resnet18.pt"
    torch.save(model.state_dict(), path)
    return model, path


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder of the files a user might have: good images of every kind, a corrupt one, a text file,
    one in a subfolder, and a hidden file (left out, not reported)."""
    folder = tmp_path_factory.mktemp("photos")
    shutil.copy(PHOTO, folder / "grace_hopper.jpg")
    rng = np.random.default_rng(0)
    PIL.Image.fromarray(rng.integers(0, 256, (30, 40), dtype=np.uint8)).save(folder / "grey.png")
    rgba = rng.integers(0, 256, (50, 30, 4), dtype=np.uint8)
    rgba[:10, :, 3] = 0  # a transparent band: it must come out white
    PIL.Image.fromarray(rgba).save(folder / "rgba.png")
    upright = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)  # stored 48 wide, 32 high; shown rotated
    rotated = PIL.Image.fromarray(upright)
    exif = rotated.getexif()
    exif[0x0112] = 6  # EXIF orientation 6: turn 90 degrees clockwise to show it upright
    rotated.save(folder / "rotated.jpg", exif=exif)
    (folder / "more").mkdir()
    PIL.Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).convert("P").save(folder / "more/palette.png")
    (folder / "corrupt.jpg").write_bytes(PHOTO.read_bytes()[:600])  # a JPEG cut short
    (folder / "notes.txt").write_text("not an image\n")
    (folder / ".hidden.png").write_bytes(b"")
    return folder


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def usage_error(argv, capsys) -> str:
    """main(argv) must exit with status 2 and one message, no traceback; returns the message."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("usage:") and "Traceback" not in err
    assert err.count("error:") == 1
    return err.split("error: ", 1)[1]


def check_against_minicam(model, path, rows, saved):
    """The CSV rows and the saved maps of one image (top 2, Grad-CAM and Grad-CAM++, --size 64) are the
    direct minicam calls on the same preprocessed tensor."""
    preprocess = Preprocess(64, IMAGENET_MEAN, IMAGENET_STD)
    image = load_image(path)
    x = preprocess(image)[None]
    with torch.no_grad():
        scores = model(x)[0]
    for rank, k in enumerate(scores.topk(2).indices.tolist(), 1):
        for method, function in (("Grad-CAM", minicam.gradcam), ("Grad-CAM++", minicam.gradcam_pp)):
            row = next(row for row in rows if row["rank"] == str(rank) and row["method"] == method)
            assert (row["class"], row["class_index"], row["layer"]) == (f"class {k}", str(k), "layer4")
            assert float(row["logit"]) == pytest.approx(scores[k].item(), rel=1e-5)
            assert float(row["probability"]) == pytest.approx(torch.softmax(scores, 0)[k].item(), rel=1e-4)
            # the map is the direct call's (layer4: the explorer's default for a ResNet), and the CSV's peak is
            # its maximum, upsampled, in the original image's pixels (from the saved map: one image or a
            # batch of three may move a near-tie of this random network's 2x2 maps)
            raw = saved["maps"][method][rank - 1]
            torch.testing.assert_close(raw, function(model, x, k, "layer4")[0])
            r, c = divmod(int(minicam.upsample(raw, 64).argmax()), 64)
            peak = preprocess.to_image(r, c, (image.height, image.width))
            assert (int(row["peak_row"]), int(row["peak_col"])) == peak


# ---- a folder of the user's files -------------------------------------------------------------------------

def test_a_folder_is_explained_the_bad_files_named_and_the_numbers_are_minicams(resnet, photos, tmp_path, capsys):
    model, weights = resnet
    out = tmp_path / "out"
    code = main(["--model", "resnet18", "--weights", str(weights), "--images", str(photos), "--size", "64",
                 "--top", "2", "--methods", "gradcam", "Grad-CAM++", "--save-maps", "--batch-size", "3",
                 "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1  # some files were skipped
    for name in BAD:
        assert f"skipped {photos / name}:" in err
    assert ".hidden" not in err and err.count("skipped") == len(BAD)
    stems = {Path(name).stem for name in GOOD}
    assert {p.stem for p in out.glob("*.png")} == stems and {p.stem for p in out.glob("*.pt")} == stems
    rows = read_csv(out / "maps.csv")
    assert list(rows[0]) == list(explain.CSV_COLUMNS) and len(rows) == len(GOOD) * 2 * 2
    for name in GOOD:
        check_against_minicam(model, photos / name, [row for row in rows if row["image"] == str(photos / name)],
                              torch.load(out / f"{Path(name).stem}.pt", weights_only=True))
    assert torch.load(out / "rotated.pt", weights_only=True)["size"] == (48, 32)  # upright: 48 high, 32 wide
    page = (out / "index.html").read_text()
    for name in GOOD:
        assert f'href="{Path(name).stem}.png"' in page
    assert "href='maps.csv'" in page and "corrupt.jpg" in page and "notes.txt" in page and "file://" not in page


def test_images_are_read_as_a_user_would_see_them(photos):
    upright = load_image(photos / "rotated.jpg")
    assert upright.size == (32, 48) and upright.mode == "RGB"   # (width, height): turned as EXIF says
    raw = PIL.Image.open(photos / "rotated.jpg")
    assert raw.size == (48, 32)
    grey = np.asarray(load_image(photos / "grey.png"))
    assert grey.shape == (30, 40, 3) and (grey[..., 0] == grey[..., 2]).all()
    rgba = np.asarray(load_image(photos / "rgba.png"))
    assert (rgba[:10] == 255).all() and rgba.shape == (50, 30, 3)   # transparent pixels on white
    assert load_image(photos / "more/palette.png").mode == "RGB"
    for name in BAD:
        with pytest.raises(ValueError, match=f"{name}: .*give a JPEG, PNG, WebP or BMP image"):
            load_image(photos / name)


def test_find_images_searches_folders_once_each_without_hidden_files(photos):
    found = find_images([photos, photos / "grey.png"])
    assert sorted(p.relative_to(photos).as_posix() for p in found) == sorted(GOOD + BAD)
    with pytest.raises(FileNotFoundError, match="--images: no such file or folder"):
        find_images([photos / "missing"])


def test_preprocessing_is_torchvisions_and_peaks_land_where_the_pixels_were():
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1   # its metadata ship with torchvision: no download
    t = weights.transforms()
    preprocess = Preprocess(t.crop_size[0], tuple(t.mean), tuple(t.std), t.resize_size[0], t.interpolation)
    for height, width, top, left in ((300, 500, 200, 300), (517, 333, 100, 40), (260, 256, 128, 128)):
        image = np.zeros((height, width, 3), dtype=np.uint8)
        image[top:top + 20, left:left + 20] = 255   # a white square: where is it in the input?
        image = PIL.Image.fromarray(image)
        x = preprocess(image)
        torch.testing.assert_close(x, t(image), rtol=0, atol=0)
        rows, cols = (preprocess.view(image).sum(0) > 1.5).nonzero(as_tuple=True)
        r, c = preprocess.to_image(int(rows.float().mean()), int(cols.float().mean()), (height, width))
        assert top <= r < top + 20 and left <= c < left + 20


# ---- torchvision weights by name: from the cache only -------------------------------------------------------

def test_named_weights_come_from_the_cache_or_a_clear_message(resnet, tmp_path, monkeypatch, capsys):
    model, weights_file = resnet
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    argv = ["--model", "resnet18", "--weights", "IMAGENET1K_V1", "--images", str(PHOTO), "--top", "1",
            "--out", str(tmp_path / "out"), "--quiet"]
    message = usage_error(argv, capsys)
    assert f"expected at {cached}" in message and "--allow-download" in message and weights.url in message
    cached.parent.mkdir(parents=True)
    shutil.copy(weights_file, cached)   # as if downloaded before
    assert main(argv) == 0
    (row,) = read_csv(tmp_path / "out" / "maps.csv")
    image = load_image(PHOTO)
    x = weights.transforms()(image)[None]   # the weights' own preprocessing: resize 256, centre 224
    with torch.no_grad():
        scores = model(x)[0]
    k = int(scores.argmax())
    assert row["class"] == weights.meta["categories"][k] and row["class_index"] == str(k)
    assert float(row["logit"]) == pytest.approx(scores[k].item(), rel=1e-5)
    r, c = divmod(int(minicam.upsample(minicam.gradcam(model, x, k, "layer4")[0], 224).argmax()), 224)
    preprocess = Preprocess(224, tuple(weights.transforms().mean), tuple(weights.transforms().std), 256)
    assert (int(row["peak_row"]), int(row["peak_col"])) == preprocess.to_image(r, c, (600, 512))


# ---- bad arguments: one message, exit status 2, before any image is read ------------------------------------

def test_bad_arguments_are_one_message_and_exit_2(resnet, photos, tmp_path, capsys):
    _, weights = resnet
    classes = tmp_path / "five.txt"
    classes.write_text("a\nb\nc\nd\ne\n")
    out = tmp_path / "out"
    common = ["--images", str(photos), "--out", str(out), "--quiet"]
    cases = [  # the cheap shapes models where the model does not matter
        (["--model", "resnet1", "--weights", str(weights)], "unknown model 'resnet1' (did you mean ['resnet18'"),
        (["--model", "resnet18", "--weights", str(tmp_path / "none.pt")], "--weights: no such file"),
        (["--model", "shapes_resnet", "--weights", str(weights)], "does not fit --model shapes_resnet"),
        (["--model", "resnet18", "--weights", str(weights), "--classes", str(classes)],
         "has 5 classes, but the model gives 1000 scores per image"),
        (["--model", "shapes_vgg", "--layer", "relu9"], "--layer: 'relu9' not found"),
        (["--model", "shapes_resnet", "--layer", "layer4.0.relu"], "cannot be used"),
        (["--model", "shapes_vgg", "--methods", "gradcamm"], "--methods: unknown ['gradcamm']"),
        (["--model", "resnet18"], "--weights is needed for resnet18"),
        (["--model", "shapes_vgg", "--methods", "cam", "--layer", "relu2"], "--methods: CAM does not apply here"),
        (["--model", "shapes_vgg", "--top", "5"], "--top must be between 1 and the model's 4 classes"),
    ]
    for argv, expected in cases:
        assert expected in usage_error(argv + common, capsys), argv
    assert "--images: no such file or folder" in usage_error(
        ["--model", "shapes_vgg", "--images", str(tmp_path / "nowhere"), "--out", str(out)], capsys)
    assert not out.exists()   # refused before anything was written


def test_a_whole_pickled_model_needs_trust_checkpoint(photos, tmp_path, capsys):
    model = minicam.models.load_pretrained("shapes_resnet")
    whole = tmp_path / "whole.pt"
    torch.save(model, whole)
    argv = ["--model", "shapes_resnet", "--weights", str(whole), "--images", str(photos / "grey.png"),
            "--out", str(tmp_path / "out"), "--quiet"]
    message = usage_error(argv, capsys)
    assert "runs code stored in the file" in message and "--trust-checkpoint" in message
    assert main(argv + ["--trust-checkpoint"]) == 0
    assert len(read_csv(tmp_path / "out" / "maps.csv")) == 3   # the shapes world's default: top 3 of 4


def test_your_own_function_and_class_file_and_the_layer_list(photos, tmp_path, capsys):
    classes = tmp_path / "classes.txt"
    classes.write_text("round\nboxy\npointy\nplus\n")
    out = tmp_path / "out"
    shipped = str(minicam.models.weights_path("shapes_resnet"))
    assert main(["--model", "minicam.models:shapes_resnet", "--weights", shipped, "--classes", str(classes),
                 "--size", "64", "--mean", "0", "0", "0", "--std", "1", "1", "1", "--prob", "sigmoid", "--top", "4",
                 "--images", str(photos / "grey.png"), "--out", str(out), "--quiet"]) == 0
    rows = read_csv(out / "maps.csv")
    assert sorted(row["class"] for row in rows) == sorted(["round", "boxy", "pointy", "plus"])
    assert main(["--model", "shapes_resnet", "--list-layers"]) == 0
    listed = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in listed]
    assert names[:4] == ["conv1", "bn1", "relu", "maxpool"]
    assert "layer4.0.conv2" in names and "layer4.0.relu" not in names   # it runs twice
    assert [line.split()[0] for line in listed if line.endswith("<- default")] == ["layer4"]


def test_the_command_runs_as_a_program(photos, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(minicam.__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "minicam", "explain", "--model", "shapes_vgg", "--methods", "cam",
                          "--images", str(photos / "grey.png"), str(photos / "notes.txt"), "--out", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert f"skipped {photos / 'notes.txt'}: not an image" in run.stderr
    assert "explained 1 of 2 images (1 skipped)" in run.stdout
    assert (tmp_path / "grey.png").is_file() and (tmp_path / "index.html").is_file()


def test_a_fine_tuned_torchvision_head_in_a_wrapped_state_dict(photos, tmp_path):
    """A resnet18 trained on 5 classes, saved as a training script might (under "state_dict", with
    DataParallel's "module." prefix): rebuilt with 5 outputs, named by --classes."""
    torch.manual_seed(0)
    tuned = torchvision.models.resnet18(num_classes=5).eval()
    path = tmp_path / "tuned.pt"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in tuned.state_dict().items()}}, path)
    classes = tmp_path / "five.txt"
    classes.write_text("a\nb\nc\nd\ne\n")
    out = tmp_path / "out"
    assert main(["--model", "resnet18", "--weights", str(path), "--classes", str(classes), "--size", "32",
                 "--images", str(photos / "grey.png"), "--out", str(out), "--quiet"]) == 0
    rows = read_csv(out / "maps.csv")
    with torch.no_grad():
        scores = tuned(Preprocess(32)(load_image(photos / "grey.png"))[None])[0]
    assert [row["class"] for row in rows] == ["abcde"[k] for k in scores.topk(3).indices.tolist()]
    assert float(rows[0]["logit"]) == pytest.approx(scores.max().item(), rel=1e-5)


# ---- issue 22: the second hostile probe's defects ----------------------------------------------------------

def explain_ok(argv, capsys) -> tuple[int, str]:
    """main(argv) as a run that is not a usage error (Ctrl-C must not escape it): (status, stderr)."""
    try:
        code = main(argv)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped main: a traceback instead of exit status 130")
    return code, capsys.readouterr().err


def test_float_and_32_bit_integer_tiffs_are_scaled_or_refused(tmp_path):
    """Defect 5: mode F and 32-bit integer TIFFs loaded as black images and were explained."""
    ramp = np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(48, 64)
    PIL.Image.fromarray(ramp).save(tmp_path / "float.tif")
    grey = np.asarray(load_image(tmp_path / "float.tif"))
    assert grey.shape == (48, 64, 3) and grey[0, 0, 0] == 0 and grey[-1, -1, 0] == 255   # [0, 1] -> 0..255
    assert abs(int(grey[24, 0, 0]) - 128) <= 2
    PIL.Image.fromarray(ramp * 1000).save(tmp_path / "float_wide.tif")
    PIL.Image.fromarray((ramp * 4e6).astype(np.int32)).save(tmp_path / "int32.tif")
    for name, kind in (("float_wide.tif", "float pixels from 0 to 1000"), ("int32.tif", "32-bit integer pixels")):
        with pytest.raises(ValueError, match=f"{name}: {kind}.*no agreed black and white"):
            load_image(tmp_path / name)
    sixteen = (ramp * 65535).astype(np.uint16)
    PIL.Image.fromarray(sixteen).save(tmp_path / "sixteen.png")
    assert np.asarray(load_image(tmp_path / "sixteen.png"))[-1, -1, 0] == 255   # 16 bits still scaled by 1/256


def test_out_equal_to_or_inside_images_is_refused(photos, tmp_path, capsys):
    """Defect 8: --out equal to --images overwrote the photos with figures; --out inside --images made a
    rerun explain the previous figures."""
    before = {p: p.read_bytes() for p in photos.rglob("*") if p.is_file()}
    for out in (photos, photos / "more", photos / "explained"):
        message = usage_error(["--model", "shapes_vgg", "--images", str(photos), "--out", str(out), "--quiet"], capsys)
        assert "overlaps --images" in message
    assert usage_error(["--model", "shapes_vgg", "--images", str(photos / "grey.png"), "--out", str(photos.parent),
                        "--quiet"], capsys).startswith(f"--out {photos.parent} overlaps --images")
    assert {p: p.read_bytes() for p in photos.rglob("*") if p.is_file()} == before and not (photos / "explained").exists()


def test_every_file_is_written_under_a_temporary_name_then_renamed(photos, tmp_path, monkeypatch, capsys):
    """Defect 8: a reader, or Ctrl-C, could meet a half-written PNG, CSV or gallery."""
    renamed, replace = [], os.replace

    def spy(source, target):
        assert Path(source).name.startswith(".") and Path(source).parent == Path(target).parent
        renamed.append(Path(target).name)
        replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    out = tmp_path / "out"
    code, _ = explain_ok(["--model", "shapes_vgg", "--images", str(photos), "--save-maps", "--out", str(out), "--quiet"],
                         capsys)
    assert code == 1   # the two bad files skipped
    written = sorted(p.name for p in out.iterdir())   # the lock file is gone too
    assert sorted(renamed) == written and "index.html" in written and "maps.csv" in written
    assert len(written) == 2 * len(GOOD) + 2


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_writes(photos, tmp_path, capsys):
    """Defect 8: two runs into one --out interleaved their CSV rows (NUL bytes, rows lost)."""
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".minicam.lock", "a+b") as held:   # as the first run holds it
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        message = usage_error(["--model", "shapes_vgg", "--images", str(photos / "grey.png"), "--out", str(out),
                               "--quiet"], capsys)
    assert "in use by another run" in message
    assert [p.name for p in out.iterdir()] == [".minicam.lock"]
    assert explain_ok(["--model", "shapes_vgg", "--images", str(photos / "grey.png"), "--out", str(out), "--quiet"],
                      capsys)[0] == 0   # once the first run is done


def test_ctrl_c_exits_130_and_leaves_the_gallery_of_what_finished(photos, tmp_path, monkeypatch, capsys):
    """Defect 8: Ctrl-C gave exit status 1, a traceback, a half-written PNG, CSV rows without PNGs and
    the previous run's index.html."""
    out = tmp_path / "out"
    argv = ["--model", "shapes_vgg", "--images", str(photos), "--batch-size", "2", "--out", str(out), "--quiet"]
    assert explain_ok(argv, capsys)[0] == 1   # a whole run first: its gallery must not survive the next
    calls, batch_maps = [], explain._batch_maps

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 2:   # during the second batch
            raise KeyboardInterrupt
        return batch_maps(*args)

    monkeypatch.setattr(explain, "_batch_maps", interrupted)
    code, err = explain_ok(argv, capsys)
    assert code == 130 and "Traceback" not in err and "interrupted: explained 1 of 7 images" in err
    rows = read_csv(out / "maps.csv")
    first = ["grace_hopper.jpg"]   # the first batch: corrupt.jpg (skipped) and this one
    assert sorted({Path(row["image"]).name for row in rows}) == first
    page = (out / "index.html").read_text()
    assert "Interrupted" in page and page.count("<figure>") == 1
    for name in first:
        assert f'href="{Path(name).stem}.png"' in page
        PIL.Image.open(out / f"{Path(name).stem}.png").verify()   # whole files
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]


def test_broken_links_huge_pngs_and_library_warnings_are_one_line_each(tmp_path, monkeypatch, capsys):
    """Defect 10: dangling symlinks were dropped silently; a 12 KB 10000x10000 PNG cost 1.6 GB; Pillow's
    warnings came out raw (source lines of a library the user never called)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(PHOTO, folder / "photo.jpg")
    (folder / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    PIL.Image.new("1", (10000, 10000)).save(folder / "huge.png")
    assert (folder / "huge.png").stat().st_size < 100_000
    exif_transpose = explain.PIL.ImageOps.exif_transpose

    def warns(image, **kwargs):  # as Pillow does on a photo with odd EXIF data
        import warnings
        warnings.warn("Corrupt EXIF data.  Expecting to read 12 bytes but only got 6.", UserWarning)
        return exif_transpose(image, **kwargs)

    monkeypatch.setattr(explain.PIL.ImageOps, "exif_transpose", warns)
    code, err = explain_ok(["--model", "shapes_vgg", "--images", str(folder), "--out", str(tmp_path / "out"),
                            "--quiet"], capsys)
    assert code == 1
    assert f"skipped {folder / 'gone.jpg'}: a broken symbolic link (to {tmp_path / 'deleted.jpg'})" in err
    assert f"skipped {folder / 'huge.png'}: 10000x10000 pixels, more than the 64 megapixels" in err
    assert f"note: {folder / 'photo.jpg'}: Corrupt EXIF data." in err
    assert "UserWarning" not in err and "warnings.warn" not in err and len(err.strip().splitlines()) == 3


MODELS = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, per_image=True):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4, 3)
        self.per_image = per_image

    def forward(self, x):
        a = self.relu(self.conv(x)).mean(dim=(2, 3))
        return self.fc(a if self.per_image else a.reshape(1, -1))   # reshape(1, -1): only a batch of one


def scripted():
    return torch.jit.script(Net())


def half():
    return Net().half()


def batch_of_one():
    return Net(per_image=False)
'''


@pytest.mark.parametrize("argv, expected", [
    (["--model", "shapes_vgg", "--device", "meta"], "--device: meta has no data"),
    (["--model", "shapes_vgg", "--device", "mps"], "--device: mps is not available here"),
    (["--model", "shapes_vgg", "--device", "xpu"], "--device: xpu is not available here"),
    (["--model", "shapes_vgg", "--size", "40000"], "--size must be S or H W, whole numbers of pixels from 1 to 4096"),
    (["--model", "mymodels:scripted"], "--model mymodels:scripted: model must be a torch.nn.Module, not a TorchScript module"),
    (["--model", "mymodels:half", "--size", "16"], "--model mymodels:half: its parameters are torch.float16"),
    (["--model", "mymodels:batch_of_one", "--size", "16", "--batch-size", "2"],
     "--model: the model fails on a batch of 2 images"),
    (["--model", "shapes_resnet", "--weights", "NAN"], "--weights: fc.weight holds NaN or inf values"),
])
def test_bad_models_devices_and_sizes_are_one_message_and_exit_2(argv, expected, photos, tmp_path, monkeypatch, capsys):
    """Defect 10: each was a traceback (or, for the NaN weights, a CSV row of "logit nan" first; for a half-
    precision model, a message blaming --size)."""
    (tmp_path / "mymodels.py").write_text(MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    state = minicam.models.load_pretrained("shapes_resnet").state_dict()
    state["fc.weight"][0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    argv = [str(tmp_path / "nan.pt") if a == "NAN" else a for a in argv]
    out = tmp_path / "out"
    message = usage_error(argv + ["--images", str(photos / "grey.png"), str(photos / "rgba.png"), "--out", str(out),
                                  "--quiet"], capsys)
    assert expected in message
    assert not out.exists()


def test_one_forward_pass_per_batch_gives_the_top_classes_and_the_maps(resnet, photos, tmp_path, capsys):
    """Item 5: each batch ran three forward passes (a probe, the prediction, the capture) where one serves;
    now one per batch, and one on a single image for the first batch's layer decision."""
    model, weights = resnet
    calls = []
    original = explain._runnable

    def counted(built, spec):
        built = original(built, spec)
        built.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
        return built

    try:
        explain._runnable = counted
        code = main(["--model", "resnet18", "--weights", str(weights), "--images", str(photos), "--size", "32",
                     "--batch-size", "3", "--out", str(tmp_path / "out"), "--quiet"])
    finally:
        explain._runnable = original
    assert code == 1 and calls == [1, 2, 2, 1]   # the layer decision on one image; batches of 3 less skipped files


def test_an_all_zero_map_has_no_peak_in_the_csv(photos, tmp_path, monkeypatch):
    """Defect 7 (the app's side): an all-zero map was reported with a peak at (0, 0)."""
    batch_maps = explain._batch_maps

    def zero_maps(*args):
        scores, top, maps = batch_maps(*args)
        return scores, top, {name: torch.zeros_like(m) for name, m in maps.items()}

    monkeypatch.setattr(explain, "_batch_maps", zero_maps)
    assert main(["--model", "shapes_vgg", "--images", str(photos / "grey.png"), "--out", str(tmp_path / "out"),
                 "--quiet"]) == 0
    rows = read_csv(tmp_path / "out" / "maps.csv")
    assert len(rows) == 3 and all(row["peak_row"] == row["peak_col"] == "" for row in rows)
