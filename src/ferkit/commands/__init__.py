"""The ``ferkit`` commands, one module per group (parsing and printing only; each calls one public function of
the module that does the work). :mod:`ferkit.cli` puts them on one Typer app."""
