# MLflow tracking (workflow/embrm/tracking/; docs/tracking.md).
#
# tracking.mode: sync  the `track` rule logs every run at the end, from one process.
# tracking.mode: jobs  the onstart hook creates database, experiment and parent run before any
#                      job starts; each evaluate job logs its own run; `track` still runs at the
#                      end as the safety net and puts figures and tables on the parent run.
# This file owns the workflow's onstart/onsuccess/onerror hooks (Snakemake keeps one of each).
from embrm import tracking as embrm_tracking
from embrm.hashing import config_hash


localrules:
    track,


TRACKING_SPEC = {
    "uri": TRACKING_URI,
    "experiment": PLAN.config["tracking"]["experiment"],
    "artifact_location": PLAN.config["tracking"]["artifact_location"],
    "artifacts": PLAN.config["tracking"]["artifacts"],
    "config_hash": config_hash(PLAN.config),
    "repo": workflow.basedir,  # the workflow's source tree: its git commit is logged
    "results": str(Path(RESULTS).resolve()),
}
TRACKING_LOGS = TREE.log_dir("tracking")


onstart:
    check_before_jobs()
    embrm_tracking.on_workflow_start(
        workflow,
        PLAN.config["tracking"],
        TRACKING_SPEC,
        state_path=TRACKING_STATE,
        log_dir=TRACKING_LOGS,
    )


onsuccess:
    embrm_tracking.on_workflow_end(
        "FINISHED",
        state_path=TRACKING_STATE,
        synced_path=TRACKING_SYNCED,
        log_dir=TRACKING_LOGS,
    )


onerror:
    embrm_tracking.on_workflow_end(
        "FAILED",
        state_path=TRACKING_STATE,
        synced_path=TRACKING_SYNCED,
        log_dir=TRACKING_LOGS,
    )


rule track:
    input:
        runs=finished_runs(),
        figures=TARGETS.figure_files(FIGURES),
        tables=TARGETS.tables(),
        config=TREE.file("config.used.yaml"),
        # the verdict per claim: a table artifact and one metric per claim on the parent run
        findings=TARGETS.findings(),
    output:
        TRACKING_SYNCED,
    log:
        TREE.log("track"),
    benchmark:
        TREE.benchmark("track")
    conda:
        ENV
    params:
        metrics=metrics_files(),
        spec=TRACKING_SPEC,
        mode=PLAN.config["tracking"]["mode"],
        state=TRACKING_STATE,
        # Changes while an earlier sync left runs pending (backend down), so the rule reruns.
        pending=TARGETS.pending_tracking(),
    script:
        "../scripts/track.py"
