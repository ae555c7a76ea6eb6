# Findings: a verdict per claim of the study, tested on the summary table (embrm.findings;
# docs/findings.md). findings.md is the report's first page: when it exists, its verdicts are put
# on the landing page (workflow/report/workflow.rst reads them from FINDINGS_PAGE below), and the
# full table is the report's "Findings" entry.
from embrm.figures import findings as figures_findings
from embrm.findings.plan import PLAN_PATH


localrules:
    findings,
    attribution,
    findings_figure,


FINDINGS_RST = TREE.page("findings.rst")
# The landing page is rendered from the workflow's config; the verdicts ride along under a key
# that no rule or config file uses.
config["_findings_page"] = (
    Path(FINDINGS_RST).read_text() if Path(FINDINGS_RST).exists() else ""
)


rule findings:
    input:
        TREE.file("summary.parquet"),
        runs=finished_runs(),
        plan=str(PLAN_PATH),  # docs/analysis-plan.md: a new plan decides again
        latest=findings_of_last_look,  # with findings.looks: the last look's (looks.smk)
    output:
        csv=report(
            TREE.file("findings.csv"),
            caption="../report/findings.rst",
            category="Findings",
            labels={"content": "findings.csv (download)"},
        ),
        md=TREE.file("findings.md"),
        rst=FINDINGS_RST,
        html=report(
            TREE.page("findings.html"),
            caption="../report/findings.rst",
            category="Findings",
            labels={"content": "verdict per claim, every test"},
        ),
    log:
        TREE.log("findings"),
    benchmark:
        TREE.benchmark("findings")
    conda:
        ENV
    params:
        # per-test-prompt values: the interval over test prompts
        metrics=metrics_files(),
    script:
        "../scripts/findings.py"


# The training recipe's attribution, for a grid whose heads include a head type under both
# protocols' presets (embrm.findings.attribution; docs/protocol-ablation.md).
rule attribution:
    input:
        runs=finished_runs(),
    output:
        md=TREE.file("attribution.md"),
        html=report(
            TREE.page("attribution.html"),
            caption="../report/attribution.rst",
            category="Findings",
            labels={"content": "attribution of the training recipe"},
        ),
    log:
        TREE.log("attribution"),
    benchmark:
        TREE.benchmark("attribution")
    conda:
        ENV
    params:
        metrics=metrics_files(),
        heads=TARGETS.planned_heads,
    script:
        "../scripts/attribution.py"


rule findings_figure:
    input:
        summary=TREE.file("summary.parquet"),
        findings=TREE.file("findings.csv"),
    output:
        png=report(
            TREE.figure("{finding}", "png"),
            caption="../report/figure.rst",
            category="Findings",
            labels=lambda w: {
                "content": figures_findings.FINDINGS_FIGURES[w.finding].label
            },
        ),
        svg=TREE.figure("{finding}", "svg"),
    log:
        TREE.log("figure", "{finding}"),
    benchmark:
        TREE.benchmark("figure", "{finding}")
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
