# Findings: a verdict per claim of the study, tested on the summary table (embrm.findings;
# docs/findings.md). findings.md is the report's first page: when it exists, its verdicts are put
# on the landing page (workflow/report/workflow.rst reads them from FINDINGS_PAGE below), and the
# full table is the report's "Findings" entry.
from embrm.figures import findings as figures_findings
from embrm.findings.plan import PLAN_PATH


localrules:
    findings,
    findings_figure,


FINDINGS = [f"{RESULTS}/findings.csv", f"{RESULTS}/findings.md"]
# The findings' figures this grid can draw (the sensitivity map needs several worlds).
FINDINGS_FIGURE_NAMES, SKIPPED_FINDINGS_FIGURES = figures_findings.available(
    grid_settings()
)
FINDINGS_FIGURE_FILES = expand(
    f"{RESULTS}/figures/{{name}}.{{ext}}",
    name=FINDINGS_FIGURE_NAMES,
    ext=["png", "svg"],
)
FINDINGS_RST = f"{RESULTS}/report/findings.rst"
# The landing page is rendered from the workflow's config; the verdicts ride along under a key
# that no rule or config file uses.
config["_findings_page"] = (
    Path(FINDINGS_RST).read_text() if Path(FINDINGS_RST).exists() else ""
)


rule findings:
    input:
        f"{RESULTS}/summary.parquet",
        runs=finished_runs(),
        plan=str(PLAN_PATH),  # docs/analysis-plan.md: a new plan decides again
        latest=findings_of_last_look,  # with findings.looks: the last look's (looks.smk)
    output:
        csv=report(
            f"{RESULTS}/findings.csv",
            caption="../report/findings.rst",
            category="Findings",
            labels={"content": "findings.csv (download)"},
        ),
        md=f"{RESULTS}/findings.md",
        rst=FINDINGS_RST,
        html=report(
            f"{RESULTS}/report/findings.html",
            caption="../report/findings.rst",
            category="Findings",
            labels={"content": "verdict per claim, every test"},
        ),
    log:
        f"{RESULTS}/logs/findings.log",
    benchmark:
        f"{RESULTS}/benchmarks/findings.tsv"
    conda:
        ENV
    params:
        # per-test-prompt values: the interval over test prompts
        metrics=metrics_files(),
    script:
        "../scripts/findings.py"


rule findings_figure:
    input:
        summary=f"{RESULTS}/summary.parquet",
        findings=f"{RESULTS}/findings.csv",
    output:
        png=report(
            f"{RESULTS}/figures/{{finding}}.png",
            caption="../report/figure.rst",
            category="Findings",
            labels=lambda w: {
                "content": figures_findings.FINDINGS_FIGURES[w.finding].label
            },
        ),
        svg=f"{RESULTS}/figures/{{finding}}.svg",
    log:
        f"{RESULTS}/logs/figure/{{finding}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figure/{{finding}}.tsv"
    wildcard_constraints:
        finding="|".join(figures_findings.FINDINGS_FIGURES),
    conda:
        ENV
    params:
        title=lambda w: figures_findings.FINDINGS_FIGURES[w.finding].label,
        caption=lambda w: rst_escape(
            figures_findings.FINDINGS_FIGURES[w.finding].caption
        ),
    script:
        "../scripts/findings_figure.py"
