// MathJax 3 configuration for pymdownx.arithmatex (generic mode): it writes inline maths as
// \( ... \) and display maths as \[ ... \] inside elements of class "arithmatex". The markdown
// cells of the notebooks (rendered by mkdocs-jupyter, class "jp-MarkdownOutput") keep Jupyter's
// $ ... $ and $$ ... $$; only those two classes are typeset, so a "$" elsewhere is left alone.
// The MathJax bundle itself (tex-svg.js, v3.2.2, Apache-2.0) is vendored next to this file, taken
// from the django-static-mathjax wheel, so equations render offline; SVG output needs no web fonts.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    // Skip every element of Material's layout (classes md-*) and what they contain, except the two
    // classes below and their descendants. (".*|", the usual choice, would also skip the unclassed
    // <p> inside a notebook cell, since MathJax re-tests every element's class on the way down.)
    ignoreHtmlClass: "md-[\\w-]+",
    processHtmlClass: "arithmatex|jp-MarkdownOutput",
  },
  svg: { fontCache: "global" },
};

// Typeset every page Material reports (also after instant navigation, if it is enabled).
if (typeof document$ !== "undefined") {
  document$.subscribe(() => {
    if (window.MathJax && MathJax.startup && MathJax.typesetPromise) {
      MathJax.startup.output.clearCache();
      MathJax.typesetClear();
      MathJax.texReset();
      MathJax.typesetPromise();
    }
  });
}
