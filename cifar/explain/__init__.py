"""Why did the model say that: gradient heatmaps (Grad-CAM family) for every registry model.

- :mod:`cifar.explain.split`: the model cut in two at the feature map the head reads (image ->
  feature map, feature map -> class scores), built across the nested ``backbone`` correctly.
- :mod:`cifar.explain.cam`: heatmaps from the gradients of a class score at that feature map
  (Grad-CAM, Grad-CAM++, HiResCAM).
- :mod:`cifar.explain.overlay`: a heatmap drawn over the photo in a colour map.
- :mod:`cifar.explain.explainer`: the :class:`Explainer` behind ``cifar explain`` (loads a
  ``.keras`` file or a run folder, decodes photos by the one image rule, explains them).

Nothing is imported here, so importing a submodule loads only what it needs.

Example:
    >>> from cifar.explain.explainer import Explainer
    >>> explainer = Explainer.load("runs/photos-20250101-120000")
    >>> result = explainer.explain(["cat.jpg"])[0]
    >>> result.predicted_class, round(result.confidence, 2), result.heatmap.shape
    ('cat', 0.93, (160, 160))
    >>> result.save_overlay("cat_heatmap.png")
"""
