"""Building blocks of the registered models: masked convs and norms (``masked``), Mamba mixers
(``mamba``) and the blocks, backbones and heads built from them, cross-modal fusion, stems."""
