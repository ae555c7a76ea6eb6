# Aggregation rules run on the submitting host (localrules) and use `script:` because their input
# lists grow with the grid past what a command line can hold. Every output marked report() is in
# `snakemake --report results/report.html`: figures with their captions, the tables (as CSV to
# download and as HTML pages to read in the report), and the configuration used.
localrules:
    summarize,
    figure,
    config_snapshot,


rule config_snapshot:
    output:
        yaml=report(
            TREE.file("config.used.yaml"),
            caption="../report/config.rst",
            category="Configuration",
            labels={"content": "configuration (YAML, download)"},
        ),
        html=report(
            TREE.page("config.html"),
            caption="../report/config_page.rst",
            category="Configuration",
            labels={"content": "configuration, grid and figures"},
        ),
    log:
        TREE.log("config_snapshot"),
    benchmark:
        TREE.benchmark("config_snapshot")
    conda:
        ENV
    params:
        config=PLAN.config,
        runs=len(PLAN.runs),
        figures={name: FIGURE_LABELS[name] for name in FIGURES},
        skipped=SKIPPED_FIGURES,
    script:
        "../scripts/config_snapshot.py"


rule summarize:
    input:
        runs=finished_runs(),
        config=TREE.file("config.used.yaml"),
    output:
        csv=report(
            TREE.file("summary.csv"),
            caption="../report/summary.rst",
            category="Tables",
            labels={"table": "summary.csv (one row per run, download)"},
        ),
        parquet=TREE.file("summary.parquet"),
        aggregate=report(
            TREE.file("aggregate.csv"),
            caption="../report/aggregate.rst",
            category="Tables",
            labels={"table": "aggregate.csv (per setting across seeds, download)"},
        ),
        summary_page=report(
            TREE.page("summary.html"),
            caption="../report/summary.rst",
            category="Tables",
            labels={"table": "runs: headline metrics"},
        ),
        aggregate_page=report(
            TREE.page("aggregate.html"),
            caption="../report/aggregate.rst",
            category="Tables",
            labels={"table": "settings: mean and 95% interval over seeds"},
        ),
    log:
        TREE.log("summarize"),
    benchmark:
        TREE.benchmark("summarize")
    conda:
        ENV
    params:
        skipped=SKIPPED_FIGURES,
        metrics=metrics_files(),
    script:
        "../scripts/summarize.py"


rule figure:
    input:
        TREE.file("summary.parquet"),
    output:
        png=report(
            TREE.figure("{figure}", "png"),
            caption="../report/figure.rst",
            category="Figures",
            labels=lambda w: {"figure": FIGURE_LABELS[w.figure]},
        ),
        svg=TREE.figure("{figure}", "svg"),
    log:
        TREE.log("figure", "{figure}"),
    benchmark:
        TREE.benchmark("figure", "{figure}")
    wildcard_constraints:
        figure="|".join(FIGURE_LABELS),
    conda:
        ENV
    params:
        title=lambda w: FIGURE_LABELS[w.figure],
        caption=lambda w: FIGURE_CAPTIONS[w.figure],
    script:
        "../scripts/figure.py"
