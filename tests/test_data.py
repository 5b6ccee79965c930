import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from minicam.data import (BIASES, CLASSES, CUE_CLASS, ShapesBatch, ShapesDataset, cue_mask,
                          make_shapes, show_shapes)

K = len(CLASSES)


@pytest.fixture(scope="module")
def batch():
    return make_shapes(60, seed=7)


def test_shapes_and_dtypes(batch):
    assert isinstance(batch, ShapesBatch) and len(batch) == 60
    assert batch.images.shape == (60, 3, 64, 64) and batch.images.dtype == torch.float32
    assert batch.images.min() >= 0 and batch.images.max() <= 1
    assert batch.labels.shape == (60, K) and batch.labels.dtype == torch.float32
    assert set(batch.labels.unique().tolist()) <= {0.0, 1.0}
    assert batch.masks.shape == (60, K, 64, 64) and batch.masks.dtype == torch.bool
    assert len(batch.boxes) == len(batch.box_classes) == 60
    for b, c in zip(batch.boxes, batch.box_classes):
        assert b.ndim == 2 and b.shape[1] == 4 and b.dtype == torch.long
        assert c.shape == (len(b),) and c.dtype == torch.long and 1 <= len(b) <= 4
    assert not batch.cue.any()  # bias=None draws no cue


def test_other_sizes():
    b = make_shapes(3, seed=0, size=40)
    assert b.images.shape == (3, 3, 40, 40) and b.masks.shape == (3, K, 40, 40)


def test_deterministic(batch):
    again = make_shapes(60, seed=7)
    for name in ("images", "labels", "masks", "cue"):
        assert torch.equal(getattr(batch, name), getattr(again, name)), name
    for a, b in zip(batch.boxes + batch.box_classes, again.boxes + again.box_classes):
        assert torch.equal(a, b)
    # a prefix of a batch is the smaller batch of the same seed
    assert torch.equal(make_shapes(5, seed=7).images, batch.images[:5])
    other = make_shapes(60, seed=8)
    assert not torch.equal(other.images, batch.images)
    assert not torch.equal(other.labels, batch.labels)


def test_classes_are_balanced_enough():
    # every class shows up in roughly half the images, so per-label accuracy is meaningful
    freq = make_shapes(200, seed=3).labels.mean(0)
    assert ((freq > 0.3) & (freq < 0.7)).all(), freq


def test_labels_masks_boxes_agree(batch):
    for i in range(len(batch)):
        present = batch.masks[i].flatten(1).any(1)
        in_boxes = torch.zeros(K, dtype=torch.bool)
        in_boxes[batch.box_classes[i]] = True
        assert torch.equal(batch.labels[i].bool(), present)
        assert torch.equal(present, in_boxes)
        covered = torch.zeros(64, 64, dtype=torch.bool)
        for (x1, y1, x2, y2), k in zip(batch.boxes[i].tolist(), batch.box_classes[i].tolist()):
            assert 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 64
            # boxes are large enough to be real shapes, not slivers
            assert max(x2 - x1, y2 - y1) >= 8
            mask = batch.masks[i, k]
            inside = mask[y1:y2, x1:x2]
            # tight box: the class mask touches all four edges of the box (x2, y2 exclusive)
            assert inside[:, 0].any() and inside[:, -1].any() and inside[0].any() and inside[-1].any()
            # ...and within the class mask's own bounding area
            ys, xs = torch.nonzero(mask, as_tuple=True)
            assert xs.min() <= x1 and ys.min() <= y1 and x2 <= xs.max() + 1 and y2 <= ys.max() + 1
            covered[y1:y2, x1:x2] = True
        # every mask pixel lies in some box of its image
        assert not (batch.masks[i].any(0) & ~covered).any()


def test_masks_are_exclusive_and_are_the_drawn_pixels(batch):
    # visible pixels belong to one class only (occlusion resolved)
    assert batch.masks.sum(1).max() <= 1
    # masks are the painted pixels: within an object's box, mask pixels are one flat
    # colour (+ small noise) that contrasts with the unlabelled pixels around it
    gaps = []
    for img, masks, boxes, kinds in zip(batch.images, batch.masks, batch.boxes, batch.box_classes):
        for (x1, y1, x2, y2), k in zip(boxes.tolist(), kinds.tolist()):
            if (kinds == k).sum() > 1:
                continue  # the class mask would mix two objects' colours
            patch = img[:, y1:y2, x1:x2]
            obj, bg = masks[k, y1:y2, x1:x2], ~masks.any(0)[y1:y2, x1:x2]
            if bg.sum() >= 10:
                assert patch[:, obj].std(1).max() < 0.1
                gaps.append((patch[:, obj].mean(1) - patch[:, bg].mean(1)).norm())
    assert len(gaps) > 50 and min(gaps) > 0.25, (len(gaps), min(gaps))


@pytest.mark.parametrize("bias", ["train", "flip"])
def test_bias_cue_follows_class(bias):
    b = make_shapes(80, seed=11, bias=bias)
    k = CLASSES.index(CUE_CLASS)
    has_class = b.labels[:, k].bool()
    cue = cue_mask(64)
    # the cue is a white-ish patch, visible in the pixels, not just a flag
    drawn = (b.images[:, :, cue] > 0.85).all(2).all(1)
    expected = has_class if bias == "train" else ~has_class
    assert torch.equal(b.cue, expected)
    assert torch.equal(drawn, expected)
    assert 0 < has_class.sum() < len(b)  # both cases occur
    assert not (b.masks.any(1) & cue).any()  # cue pixels belong to no class


def test_bias_variants_share_the_scenes():
    # same seed, different bias: the same shapes, only the cue patch differs
    runs = {bias: make_shapes(20, seed=4, bias=bias) for bias in BIASES}
    outside = ~cue_mask(64)
    for b in runs.values():
        assert torch.equal(b.labels, runs[None].labels) and torch.equal(b.masks, runs[None].masks)
        assert torch.equal(b.images[:, :, outside], runs[None].images[:, :, outside])
    assert torch.equal(runs["train"].cue, ~runs["flip"].cue)


def test_bias_random_and_none():
    b = make_shapes(200, seed=5, bias="random")
    assert 0.35 < b.cue.float().mean() < 0.65
    k = CLASSES.index(CUE_CLASS)
    # random cue: both agreements and disagreements with the class occur
    agree = b.cue == b.labels[:, k].bool()
    assert agree.any() and (~agree).any()
    clean = make_shapes(50, seed=5)
    assert not (clean.images[:, :, cue_mask(64)] > 0.85).all(1).all(1).any()


def test_cue_mask():
    m = cue_mask(64)
    assert m.shape == (64, 64) and m.dtype == torch.bool and m.sum() == 25
    assert m[:10, :10].sum() == 25  # in the top-left corner
    assert cue_mask(48).shape == (48, 48)


def test_batch_indexing(batch):
    sub = batch[torch.tensor([4, 1])]
    assert isinstance(sub, ShapesBatch) and len(sub) == 2
    assert torch.equal(sub.images[1], batch.images[1]) and torch.equal(sub.masks[0], batch.masks[4])
    assert torch.equal(sub.boxes[0], batch.boxes[4]) and torch.equal(sub.box_classes[1], batch.box_classes[1])
    assert len(batch[3]) == 1 and len(batch[10:20]) == 10
    assert len(batch[batch.labels[:, 0].bool()]) == int(batch.labels[:, 0].sum())


def test_dataset():
    ds = ShapesDataset(10, seed=2, bias="train")
    assert len(ds) == 10
    x, y = ds[3]
    assert x.shape == (3, 64, 64) and y.shape == (K,)
    ref = make_shapes(10, seed=2, bias="train")
    assert torch.equal(x, ref.images[3]) and torch.equal(y, ref.labels[3])
    assert torch.equal(ds.batch.masks, ref.masks)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0, seed=0), "n must be a positive integer"),
    (dict(n=2.5, seed=0), "n must be a positive integer"),
    (dict(n=2, seed=0, size=16), "size must be an integer >= 32"),
    (dict(n=2, seed=0, bias="biased"), "bias must be one of"),
])
def test_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_shapes(**kwargs)


def test_error_lists_allowed_bias_values():
    with pytest.raises(ValueError) as err:
        make_shapes(2, seed=0, bias="Train")
    for allowed in BIASES:
        assert repr(allowed) in str(err.value)


def test_show_shapes(batch):
    axes = show_shapes(batch)
    assert len(axes) == 8
    ax = show_shapes(batch, index=2)
    assert len(ax.patches) == len(batch.boxes[2])  # one rectangle per object
    names = {t.get_text() for t in ax.texts}
    assert names == {CLASSES[k] for k in batch.box_classes[2].tolist()}
    axes = show_shapes(batch, index=[0, 1, 2], ncols=3)
    assert len(axes) == 3
    with pytest.raises(ValueError, match="axes for 3 images"):
        show_shapes(batch, index=[0, 1, 2], ax=ax)
    import matplotlib.pyplot as plt
    plt.close("all")
