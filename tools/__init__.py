"""Tools around the pipeline that are not part of the installed package."""
