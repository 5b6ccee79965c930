"""The command-line apps, apart from the methods: each imports the library (`minicam`), never another
app nor the notebooks' widgets; what they share is in `_common`.

    minicam explain ...    your model on your images, to a gallery (minicam.apps.explain)
    minicam evaluate ...   every map method scored on held-out shapes images (minicam.apps.evaluate)
    minicam train ...      the shipped shapes models trained from scratch (minicam.apps.train)

`python -m minicam COMMAND ...` is the same as the console command `minicam COMMAND ...`.
"""
__all__ = ["COMMANDS"]

COMMANDS = {"explain": "your model's maps on your own images, as a gallery (PNG per image, CSV, index.html)",
            "evaluate": "every map method scored with minicam.metrics on held-out shapes images",
            "train": "train the shipped shapes models from scratch"}
