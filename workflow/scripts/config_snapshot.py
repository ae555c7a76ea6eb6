"""Write the validated configuration (defaults filled in) and its report page."""

import yaml
from embrm.io import atomic_path
from embrm.summary import config_html

config = dict(snakemake.params.config)
with atomic_path(snakemake.output.yaml) as tmp:
    tmp.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
page = config_html(
    config, snakemake.params.runs, snakemake.params.figures, snakemake.params.skipped
)
with atomic_path(snakemake.output.html) as tmp:
    tmp.write_text(page)
