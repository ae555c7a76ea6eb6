localrules:
    track,


rule track:
    input:
        metrics_files(),
    output:
        f"{RESULTS}/tracking/synced.json",
    log:
        f"{RESULTS}/logs/track.log",
    benchmark:
        f"{RESULTS}/benchmarks/track.tsv"
    conda:
        ENV
    params:
        uri=TRACKING_URI,
        experiment=config["tracking"]["experiment"],
        artifact_root=f"{RESULTS}/mlartifacts",
        # Changes while an earlier sync left runs pending (backend down), so the rule reruns.
        pending=pending_tracking(),
    script:
        "../scripts/track.py"
