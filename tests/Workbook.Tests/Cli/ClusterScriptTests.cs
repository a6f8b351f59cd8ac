using System.Diagnostics;
using Workbook.Tests.Support;

namespace Workbook.Tests.Cli;

/// <summary>
/// scripts/cluster/slurm-array.sh without Slurm: a stand-in <c>sbatch</c> on PATH records what it is asked and runs
/// each job script at once (every array task with its SLURM_ARRAY_TASK_ID), so the real shards and the merge run as
/// separate processes; the merged result must equal the unsharded run's. Needs bash.
/// </summary>
public sealed class ClusterScriptTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("wb-cluster-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static string Script => Path.Combine(TestFiles.RepoRoot, "scripts", "cluster", "slurm-array.sh");

    static void SkipWithoutBash() => Skip.IfNot(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "the cluster script is a bash script");

    const string FakeSbatch = """
        #!/usr/bin/env bash
        # A stand-in for Slurm's sbatch: records its arguments, runs the job script at once (each array task in turn, with
        # SLURM_ARRAY_TASK_ID set) and prints a job id as `sbatch --parsable` does.
        set -euo pipefail
        echo "$*" >> "$SBATCH_LOG"
        script="${@: -1}" array=""
        for a in "$@"; do case "$a" in --array=*) array="${a#--array=}" ;; esac; done
        if [[ -n "$array" ]]; then
          range="${array%%%*}"
          for ((k = ${range%-*}; k <= ${range#*-}; k++)); do SLURM_ARRAY_TASK_ID=$k bash "$script" >> "$SBATCH_LOG.jobs" 2>&1; done
          echo 4242
        else
          bash "$script" >> "$SBATCH_LOG.jobs" 2>&1
          echo "4243;cluster"
        fi
        """;

    static (int Code, string Out, string Err) Bash(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Script);
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (k, v) in environment) info.Environment[k] = v;
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(6)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("slurm-array.sh did not finish");
        }
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Four methodologies x three batches; the ratio of means needs every batch's unpatched outputs in every shard, and mean ablation every prompt's.</summary>
    static readonly string[] Report = { "report", "--model", "tracr-reverse", "--task", "tracr-reverse", "--circuit", "tracr-reverse-ours", "--prompts", "10",
        "--batch-size", "4", "--values", "zero,mean-corrupt", "--seed", "3", "--json" };

    /// <summary>What the local shards printed (their logs live in the run folder, which the test deletes).</summary>
    static string ShardLogs(string folder) => !Directory.Exists(folder) ? "" :
        string.Concat(Directory.GetFiles(folder).OrderBy(f => f, StringComparer.Ordinal).Select(f => $"\n--- {Path.GetFileName(f)}:\n{File.ReadAllText(f)}"));

    [SkippableFact]
    public void TheJobArrayRunsEveryShardAndTheMergeRunsAfterThem()
    {
        SkipWithoutBash();
        string bin = Directory.CreateDirectory(Path.Combine(_dir, "bin")).FullName;
        string sbatch = Path.Combine(bin, "sbatch");
        File.WriteAllText(sbatch, FakeSbatch.Replace("\r\n", "\n") + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(sbatch, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string log = Path.Combine(_dir, "sbatch.log");
        var environment = new Dictionary<string, string> { ["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH"), ["SBATCH_LOG"] = log };
        string workbook = $"dotnet {CliProcess.CliDll}";
        string slurm = Path.Combine(_dir, "slurm"), local = Path.Combine(_dir, "local");

        // The unsharded reference in its own process, while the script runs.
        var whole = Task.Run(() => CliProcess.Run(new Dictionary<string, string>(), TimeSpan.FromMinutes(6), Report.Concat(new[] { "--csv", Path.Combine(_dir, "whole.csv") }).ToArray()));
        var run = Bash(environment, new[] { "--shards", "2", "--dir", slurm, "--workbook", workbook, "--partition", "gpu", "--gpus", "1", "--time", "0:10:00", "--csv", "--" }
            .Concat(Report).ToArray());
        Assert.True(run.Code == 0, run.Err + (File.Exists(log + ".jobs") ? "\njobs' output:\n" + File.ReadAllText(log + ".jobs") : ""));
        Assert.Contains("submitted 2 shards as job array 4242, and the merge as job 4243", run.Out);
        Assert.Contains("--gpus 1 but the verb has no --device cuda", run.Err);

        var calls = File.ReadAllLines(log);
        Assert.Equal(2, calls.Length);
        Assert.Contains("--array=1-2", calls[0]);
        Assert.Contains("--gres=gpu:1", calls[0]);
        Assert.Contains("--partition=gpu", calls[0]);
        Assert.Contains("--time=0:10:00", calls[0]);
        Assert.EndsWith("shard.sbatch", calls[0]);
        Assert.Contains("--dependency=afterok:4242", calls[1]);   // the merge waits for the whole array
        Assert.DoesNotContain("--gres", calls[1]);                 // and needs no GPU
        Assert.EndsWith("merge.sbatch", calls[1]);

        var reference = whole.Result;
        Assert.True(reference.ExitCode == 0, reference.Err);
        Assert.Equal(reference.Out, File.ReadAllText(Path.Combine(slurm, "result.json")));
        Assert.Equal(reference.Out, File.ReadAllText(Path.Combine(slurm, "result.txt")));
        Assert.True(File.ReadAllBytes(Path.Combine(_dir, "whole.csv")).SequenceEqual(File.ReadAllBytes(Path.Combine(slurm, "rows.csv"))), "rows.csv differs");
        Assert.Equal(2, Directory.GetFiles(Path.Combine(slurm, "parts")).Length);
        using (var doc = System.Text.Json.JsonDocument.Parse(reference.Out))
            Assert.Equal(2, doc.RootElement.GetProperty("faithfulness").GetArrayLength());

        // Without Slurm: the same job scripts as local background processes.
        var here = Bash(new Dictionary<string, string>(), new[] { "--shards", "3", "--dir", local, "--workbook", workbook, "--local", "--" }.Concat(Report).ToArray());
        Assert.True(here.Code == 0, here.Err + ShardLogs(Path.Combine(local, "logs")));
        Assert.Equal(reference.Out, File.ReadAllText(Path.Combine(local, "result.json")));

        // A run folder that already holds parts is refused (a stale part must never be merged).
        var again = Bash(environment, new[] { "--shards", "2", "--dir", slurm, "--workbook", workbook, "--" }.Concat(Report).ToArray());
        Assert.Equal(2, again.Code);
        Assert.Contains("already holds part files", again.Err);
    }

    [SkippableFact]
    public void DryRunPrintsTheJobScriptsAndTheSbatchCommands()
    {
        SkipWithoutBash();
        string dir = Path.Combine(_dir, "dry");
        var run = Bash(new Dictionary<string, string>(), "--shards", "4", "--dir", dir, "--workbook", "scripts/gpu/run.sh", "--partition", "gpu", "--gpus", "1",
            "--max-parallel", "2", "--merge-partition", "cpu", "--sbatch-arg=--account=lab", "--dry-run", "--",
            "discover", "--model", "gpt2", "--task", "ioi", "--algorithm", "acdc", "--device", "cuda", "--dataset", "my prompts.json");
        Assert.True(run.Code == 0, run.Err);
        Assert.Contains($"sbatch --parsable --array=1-4%2 --job-name=wb-discover --output={dir}/logs/shard-%a.log --partition=gpu --gres=gpu:1 --account=lab {dir}/shard.sbatch", run.Out);
        Assert.Contains($"sbatch --parsable --job-name=wb-discover-merge --output={dir}/logs/merge.log --partition=cpu --account=lab --dependency=afterok:JOBID {dir}/merge.sbatch", run.Out);
        // Every argument reaches the workbook as one word, and each task runs its own shard into its own part.
        Assert.Contains("exec scripts/gpu/run.sh discover --model gpt2 --task ioi --algorithm acdc --device cuda --dataset my\\ prompts.json --shard \"$k/4\"", run.Out);
        Assert.Contains($"part-\"$k\"-of-4.json", run.Out);
        Assert.Contains($"merge {dir}/parts/part-1-of-4.json {dir}/parts/part-2-of-4.json {dir}/parts/part-3-of-4.json {dir}/parts/part-4-of-4.json --out {dir}/result.json", run.Out);
        Assert.Empty(Directory.GetFiles(Path.Combine(dir, "parts")));
    }

    [SkippableTheory]
    [InlineData("0", "eval", "", "--shards must be a whole number from 1 to 100000")]
    [InlineData("2", "run", "", "'run' cannot be sharded")]
    [InlineData("2", "eval", "--csv", "do not pass --csv to the verb")]
    [InlineData("2", "discover", "--shard", "do not pass --shard to the verb")]
    public void BadArgumentsAreRefused(string shards, string verb, string extra, string expected)
    {
        SkipWithoutBash();
        var args = new List<string> { "--shards", shards, "--dir", Path.Combine(_dir, "bad"), "--dry-run", "--", verb, "--model", "toy-ioi" };
        if (extra.Length > 0) args.AddRange(new[] { extra, "1/2" });
        var run = Bash(new Dictionary<string, string>(), args.ToArray());
        Assert.Equal(2, run.Code);
        Assert.Contains(expected, run.Err);
        Assert.False(Directory.Exists(Path.Combine(_dir, "bad")));
    }
}
