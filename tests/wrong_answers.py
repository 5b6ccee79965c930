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
    "01_gradients": {
        "ex1": ["answer = torch.tensor([[0., 1.], [2., 1.]])   # the largest w, not the largest |w|",
                "answer = torch.tensor([[0., 4.], [3., 1.]])   # the sum over the planes",
                "answer = torch.tensor([[4., 2.], [1., 3.]])   # class 0's map"],
        "ex2": ["answer = Fraction(7, 8)                      # r_2",
                "answer = Fraction(3, 2)                      # no penalty: three steps of lr"],
        "ex3": ["answer = (0.20, 0.21)                        # swapped",
                "answer = (round(own[:50].float().mean().item(), 2),) * 2   # the uniform map's share"],
    },
    "02_cam": {
        "ex1": ["answer = Fraction(-1)                  # the sum of L^1, not its mean",
                "answer = Fraction(9, 8)                # y^0",
                "answer = Fraction(-1, 4) + Fraction(1, 4)   # b_0 added"],
        "ex2": ["answer = torch.ones(3, 3)              # every class sums all channels",
                "answer = torch.eye(3) / 3              # the mean taken twice"],
        "ex3": ["answer = (0.255, 0.28, True)           # the verdict the wrong way round",
                "answer = (0.28, 0.255, True)           # the thresholds swapped",
                "vgg_maps = maps_at_image['CAM, shapes VGG (relu6)']\n"
                "answer = (round(box_ious(vgg_maps, 0.15).mean().item(), 3), "
                "round(box_ious(vgg_maps, 0.2).mean().item(), 3), False)   # the VGG's"],
    },
    "03_gradcam": {
        "ex1": ["answer = Fraction(1, 3)                # row 3, column 2: counted from 0",
                "answer = Fraction(0)                   # the old weights (1/3, -2/3)"],
        "ex2": ["answer = dy1_dX.clone()                # the first score's gradient",
                "answer = torch.zeros(3, 3, dtype=torch.float64)\n"
                "for i in range(2):\n"
                "    for j in range(2):\n"
                "        answer[i:i + 2, j:j + 2] = W2[1].view(2, 2)[i, j] * W1   # overlaps overwritten, not added"],
        "ex3": ["answer = 16                            # h alone",
                "answer = 64                            # the ResNet's Z"],
        "ex4": ["answer = round(100 * hits_at['relu5', 0].float().mean().item(), 1)   # all classes, not the crosses",
                "answer = round(100 * hits_at['relu5', 4][cls_idx == CLASSES.index('cross')].float().mean().item(), 1)"
                "   # within 4 px"],
    },
    "03b_finding_bias": {
        "ex1": ["answer = 0.91                          # the patch left where it was (section 3)",
                "answer = 1.0                           # the share that says 'no circle'"],
        "ex2": ["m = minicam.gradcam(models['biased'], x_cue, k_cue, 'relu6')\n"
                "answer = (round(m[:, :4, :4].sum(dim=(1, 2)).mean().item(), 2), True)   # the circle's evidence",
                "m = minicam.gradcam(models['unbiased'], x_cue, CLASSES.index('square'), 'relu6')\n"
                "answer = (round(m[:, :4, :4].sum(dim=(1, 2)).mean().item(), 2), False)  # the unbiased model"],
        "ex3": ["answer = 1                             # one cell: 5 pixels fit in 4 + 1",
                "answer = 9                             # 3 x 3"],
    },
    "04_guided_gradcam": {
        "ex1": ["answer = 2                             # the count for +R",
                "answer = 4                             # the deconvnet's count: -R > 0 alone"],
        "ex2": ["answer = backward('guided', 1)         # the guided rule",
                "answer = backward('deconvnet', 0)      # class 0"],
        "ex3": ["answer = int((minicam.guided_gradcam(small, x_small, 0, 'relu') != 0).sum())   # class 0",
                "answer = int((minicam.guided_backprop(small, x_small, 1) != 0).sum())          # guided backprop alone"],
        "ex4": ["answer = (0.05, -0.12, False)          # the verdict the wrong way round",
                "answer = (round(pearson(maps['saliency'][2:3], maps['saliency'][3:4]).item(), 2), "
                "round(pearson(maps['Grad-CAM'][2:3], maps['Grad-CAM'][3:4]).item(), 2), True)   # saliency and Grad-CAM",
                "answer = (round(pearson(maps['guided backprop'][0:1], maps['guided backprop'][1:2]).item(), 2), "
                "round(pearson(maps['Guided Grad-CAM'][0:1], maps['Guided Grad-CAM'][1:2]).item(), 2), True)   # image two[0]"],
    },
    "05_gradcam_pp": {
        "ex1": ["answer = Fraction(1)                   # eq. 6's weight, not eq. 19's",
                "answer = Fraction(20, 80)              # Grad-CAM's weight",
                "answer = Fraction(1, 22)               # alpha, not w"],
        "ex2": ["answer = Fraction(6, 7)                # eq. 19 without the renormalisation",
                "answer = 12                            # the sum of the gradient"],
    },
    "06_lrp": {
        "ex1": ["answer = Fraction(4)                   # the gradient alone, not gradient x input",
                "answer = Fraction(-1)                  # input 1"],
        "ex2": ["answer = {'epsilon'}                   # alpha-beta forgotten",
                "answer = {'epsilon', 'gamma', 'alpha_beta'}"],
        "ex3": ["answer = Fraction(-2)                  # LRP-0's relevance",
                "answer = Fraction(2, 7)                # shared by |contribution|"],
    },
    "07_relevance_cam": {
        "ex1": ["answer = Fraction(0)                   # the survey's start",
                "answer = Fraction(1, 4)                # C = 4, the shapes world"],
        "ex2": ["answer = (0.0, True)                   # 'the starts differ by a constant factor'",
                "l_map = minicam.normalize(relevance_cam(model, x0, c_first, 'relu4', start='logit'))\n"
                "s_map = minicam.normalize(relevance_cam(model, x0, c_first, 'relu4', start='survey'))\n"
                "answer = (round((l_map - s_map).abs().max().item(), 2), False)   # the logit start"],
        "ex3": ["answer = (int((hit[RCAM]['relu1'] > 0).sum()), int((hit['Grad-CAM']['relu1'] > 0).sum()))"
                "   # all hits, not the disagreements",
                "answer = (int(((hit[RCAM]['relu1'] > 0) & ~(hit['Grad-CAM']['relu1'] > 0)).sum()),) * 2"
                "   # one way only"],
    },
    "08_evaluation": {
        "ex1": ["answer = (Fraction(100, 3), Fraction(100, 3))   # the gain kept as a negative drop",
                "answer = (Fraction(100, 3), Fraction(125, 3))   # the two swapped",
                "answer = (100 * (Fraction(3, 1) + 0 + 1) / 3, Fraction(100, 3))   # divided by O, not by Y"],
        "ex2": ["answer = Fraction(4, 5)                # Loc(0.25)",
                "answer = Fraction(9, 9)                # the box's share that is on"],
        "ex3": ["answer = 30                            # ties counted half",
                "answer = 40                            # ties counted as wins"],
    },
    "08a_evaluation_on_shapes": {
        "ex1": ["k = data.labels[img][multi].sum(1)\n"
                "answer = (round(off['Grad-CAM'][k == 2].mean().item(), 3), round(off['Grad-CAM'][k >= 3].mean().item(), 3),"
                " True)   # Grad-CAM's shares",
                "answer = (0.031, 0.061, False)          # the verdict the wrong way round"],
        "ex2": ["answer = metrics.win_percent(drops['CAM'], drops['Grad-CAM++'])   # CAM's Win % over Grad-CAM++",
                "answer = rows['Grad-CAM++']['Win %']    # against Grad-CAM, as in the table"],
    },
    "08b_sanity_checks": {
        "ex1": ["answer = rho_hand                       # A against B (section 3), not against A ** 2",
                "answer = float(np.corrcoef(flat_A, [v ** 2 for v in flat_A])[0, 1])   # Pearson of the values, not of the ranks"],
        "ex2": ["answer = (round(per_image['guided backprop']['deletion'].mean().item(), 3), "
                "round(per_image['Grad-CAM']['deletion'].mean().item(), 3), False)   # the signed map's order (section 8)",
                "answer = (0.784, 0.528, True)          # the verdict the wrong way round"],
        "ex3": ["rule = sanity.randomization_verdict(runs['shapes_vgg'].similarity['guided backprop'][-1].spearman_abs)\n"
                "answer = (round(rule.mean, 2), rule.verdict)   # the cascade's end: every layer random, not conv1 alone",
                "rule = sanity.randomization_verdict(runs['shapes_vgg'].similarity['guided backprop'][0].spearman_abs)\n"
                "answer = (round(rule.mean, 2), rule.verdict)   # the cascade's first step: fc alone",
                "only_conv1 = sanity.randomized(vgg, ['conv1'], seed=0)\n"
                "sim_conv1 = sanity.compare_maps(vgg_maps['guided backprop'], METHODS['guided backprop'](only_conv1, x, cls), 64)\n"
                "answer = (round(sim_conv1.spearman_abs.nanmean().item(), 2), 'passes')   # the signed rho's mean, not |rho|'s"],
    },
    "09_explorer": {
        "ex1": ["answer = ('relu4', 0.081)              # the most class-focused layer, not the least spread",
                "answer = ('relu6', round(layer_share['relu6'], 3))   # the share on the class's own pixels"],
        "ex2": ["with torch.no_grad():\n"
                "    answer = round(biased(flipped.images[k_cue:k_cue + 1])[0, circle].item(), 3)   # the logit",
                "with torch.no_grad():\n"
                "    answer = round(torch.softmax(biased(flipped.images[k_cue:k_cue + 1]), 1)[0, circle].item(), 3)"
                "   # a softmax over the classes",
                "with torch.no_grad():\n"
                "    answer = round(torch.sigmoid(vgg(flipped.images[k_cue:k_cue + 1]))[0, circle].item(), 3)"
                "   # the unbiased model"],
        "ex3": ["answer = ('layer4', 64)                # h * w, not h",
                "answer = ('layer3', 16)"],
    },
    "10_summary": {
        "ex1": ["answer = (round(cov_pp.mean().item(), 3), round(cov_gc.mean().item(), 3), True)   # the 50 % mark of section 6",
                "answer = (0.979, 0.987, False)         # the two swapped"],
        "ex2": ["answer = len(names) - names.index('relu4')   # relu4 itself counted",
                "answer = crossed['Grad-CAM at relu6']   # relu6's count"],
        "ex3": ["answer = (True, two_fc.fc2.weight.detach().clone())   # fc2's weights alone",
                "answer = (False, (two_fc.fc2.weight @ two_fc.fc1.weight).detach())   # the verdict of the head with its ReLU"],
    },
    "11_your_model": {
        "ex1": ["answer = 3                             # one pass per class, as three separate calls make",
                "answer = 9                             # one per image and class"],
        "ex2": ["answer = (16, 58)                      # the pixel of the resized photo, not of the photo",
                "answer = (int(16 * 480 / 256), int(58 * 640 / 341))   # the pixel's corner, not its centre"],
        "ex3": ["answer = (6, 1)                         # the cut file counted as an image",
                "answer = (4, 0)                         # 0 would mean every file was an image"],
    },
    "A2_torchcam_gradcampp": {
        "ex1": ["answer = Fraction(8, 15)               # eq. 19: the cube outside the sum",
                "answer = Fraction(10)                  # torchcam's alpha = g^2",
                "answer = Fraction(90, 247)             # the alphas summed over g > 0, not times g"],
    },
    "A1_pointing_per_class": {
        "ex1": ["answer = int((~strict)[pairs_cls == cross].sum())   # every miss, not only those within 4 px",
                "answer = int((near & ~strict).sum())                # every class, not only the crosses"],
    },
}
