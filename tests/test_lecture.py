"""minicam.suite.lecture: the lecture hall's explorer, one per shipped model, built when first picked."""
import pytest

from minicam.suite.lecture import lecture_hall
from minicam.suite.widgets import Explorer


def test_one_explorer_per_model_built_when_picked():
    hall = lecture_hall(["shapes_vgg", "shapes_vgg_biased"], n_images=2)
    picker, holder = hall.children[1], hall.children[2]
    assert list(hall.explorers) == ["shapes_vgg"] and "minicam-hall" in hall._dom_classes
    picker.value = "shapes_vgg_biased"
    assert list(hall.explorers) == ["shapes_vgg", "shapes_vgg_biased"]
    assert holder.children == (hall.explorers["shapes_vgg_biased"],)
    assert isinstance(holder.children[0].explorer, Explorer) and len(holder.children[0].explorer.images) == 2
    picker.value = "shapes_vgg"
    assert holder.children == (hall.explorers["shapes_vgg"],) and len(hall.explorers) == 2


@pytest.mark.parametrize("names, n, message", [(["resnet50"], 4, "shipped models"), ([], 4, "shipped models"),
                                               (["shapes_vgg"], 0, "n_images"), (["shapes_vgg"], 2.0, "n_images")])
def test_bad_arguments_say_what_would_be_right(names, n, message):
    with pytest.raises(ValueError, match=message):
        lecture_hall(names, n_images=n)
