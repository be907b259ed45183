"""The reproduction of the paper, built on the engine (which never imports this package).

* :mod:`.questions` -- one function per research question and Table 1, from notebook parameters to
  an answer (runs, a tidy frame, figures, claim checks);
* :mod:`.params` -- the notebooks' shared parameters, read the same way however they arrive;
* :mod:`.notebooks` -- which notebooks make up the reproduction, and their order;
* :mod:`.reproduce` -- ``python -m lt_core reproduce``: papermill over the notebooks, then the report;
* :mod:`.estimate` -- how long a reproduction will take on this machine, at measured rates;
* :mod:`.table1`, :mod:`.claims`, :mod:`.figures`, :mod:`.report` -- the paper's Table 1 beside
  ours, its claims as checks, figures in its style, and the index report over all of them.
"""
