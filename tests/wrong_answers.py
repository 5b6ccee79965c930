"""Plausible wrong answers to the notebooks' exercises, one list per exercise (at least one each).

WRONG_ANSWERS[notebook stem][grade_id] is a list of code, each put in place of the exercise's solution
region (between ``### BEGIN SOLUTION`` and ``### END SOLUTION``). notebooks/conftest.py runs each one in
the notebook's kernel under ``make nbval`` and requires the exercise's test cell to fail on it with an
AssertionError. They live here, not in the notebooks, so that the hand-out does not carry them.
"""
WRONG_ANSWERS = {
    "00_introduction": {
        "ex1": ["answer = 16                     # h alone, not h * w",
                "answer = 32 * 32                # one max-pool only"],
        "ex2": ["answer = W[1].clone()           # the score's gradient, not the softmax's",
                "answer = (2 * W[0] - W[1] - W[2]) / 9   # class 0",
                "answer = (2 * W[1] - W[0] - W[2]) / 3   # p_1 forgotten"],
        "ex3": ["_, (a,) = minicam.forward_acts(tiny, x_tiny, ['relu'])\n"
                "answer = (tiny.fc.weight[2].detach()[:, None, None] * a[0]).sum(0).clamp(min=0)   # the sum, not the mean: Z times too big",
                "_, (a,) = minicam.forward_acts(tiny, x_tiny, ['relu'])\n"
                "answer = (tiny.fc.weight[0].detach()[:, None, None] / Z * a[0]).sum(0).clamp(min=0)   # class 0"],
        "ex4": ["answer = ('shapes_vgg', sum(p.numel() for p in models['shapes_vgg'].parameters()))",
                "answer = ('shapes_resnet', sum(p.numel() for n, p in models['shapes_resnet'].named_parameters()"
                " if n.endswith('weight')))   # biases forgotten"],
    },
}
