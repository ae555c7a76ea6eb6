# Aggregation rules run on the submitting host (localrules) and use `script:` because their input
# lists grow with the grid past what a command line can hold.
localrules:
    summarize,
    figure,
    config_snapshot,


rule config_snapshot:
    output:
        report(
            f"{RESULTS}/config.used.yaml",
            caption="../report/config.rst",
            category="Configuration",
        ),
    log:
        f"{RESULTS}/logs/config_snapshot.log",
    benchmark:
        f"{RESULTS}/benchmarks/config_snapshot.tsv"
    conda:
        ENV
    params:
        config=PLAN.config,
    script:
        "../scripts/config_snapshot.py"


rule summarize:
    input:
        metrics=metrics_files(),
        config=f"{RESULTS}/config.used.yaml",
    output:
        csv=report(
            f"{RESULTS}/summary.csv",
            caption="../report/summary.rst",
            category="Tables",
        ),
        parquet=f"{RESULTS}/summary.parquet",
        aggregate=report(
            f"{RESULTS}/aggregate.csv",
            caption="../report/aggregate.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/summarize.log",
    benchmark:
        f"{RESULTS}/benchmarks/summarize.tsv"
    conda:
        ENV
    script:
        "../scripts/summarize.py"


rule figure:
    input:
        f"{RESULTS}/summary.csv",
    output:
        png=report(
            f"{RESULTS}/figures/{{figure}}.png",
            caption="../report/figure.rst",
            category="Figures",
        ),
        svg=f"{RESULTS}/figures/{{figure}}.svg",
    log:
        f"{RESULTS}/logs/figure/{{figure}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figure/{{figure}}.tsv"
    conda:
        ENV
    params:
        caption=lambda w: FIGURE_CAPTIONS[w.figure],
        skipped=SKIPPED_FIGURES,
    script:
        "../scripts/figure.py"
