"""Write the validated configuration (defaults filled in) that this workflow run used."""

import yaml
from embrm.io import atomic_path

with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text(yaml.safe_dump(dict(snakemake.params.config), sort_keys=False))
