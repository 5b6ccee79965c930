"""The notebook suite's own helpers, installed with minicam but not part of the library: the explorer
(`minicam.suite.widgets.explorer`, sliders for layer, class, method and image) and its picture
(`minicam.suite.explorer_figure`). They use the library's public names only."""
__all__: list[str] = []
