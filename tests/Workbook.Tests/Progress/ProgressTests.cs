using Workbook.Checkpoints;
using Workbook.Discovery;
using Workbook.Progress;
using Workbook.Tasks;

namespace Workbook.Tests.Progress;

/// <summary>The progress record and its displays: counts, elapsed time and the estimate left, lines and heartbeats, and discovery's reports.</summary>
public class ProgressTests
{
    [Fact]
    public void TheTrackerCountsUpToTheTotalAndEstimatesTheTimeLeftFromTheRateSoFar()
    {
        var seen = new List<WorkProgress>();
        var tracker = new ProgressTracker(new SynchronousProgress<WorkProgress>(seen.Add), "evaluation", 10, "prompts");
        tracker.Start("first");
        Thread.Sleep(50);
        tracker.Advance(4, "m1");
        tracker.Working("means");
        tracker.Advance(10); // never beyond the total
        tracker.Complete();
        Assert.Equal(new long[] { 0, 4, 4, 10, 10 }, seen.Select(p => p.Done));
        Assert.All(seen, p => Assert.Equal(10, p.Total));
        Assert.Null(seen[0].Remaining);                       // nothing done: no estimate
        var after4 = seen[1];
        Assert.NotNull(after4.Remaining);
        // remaining = elapsed × (total − done) / done
        Assert.Equal(after4.Elapsed.TotalMilliseconds * 6 / 4, after4.Remaining!.Value.TotalMilliseconds, 1e-3);
        Assert.Equal("means", seen[2].Item);
        Assert.True(seen[^1].Finished);
        Assert.Contains("evaluation 4/10 prompts (40%) · m1 · ", after4.ToString());
        Assert.Throws<ArgumentOutOfRangeException>(() => tracker.Advance(-1));
    }

    [Fact]
    public void OffATerminalTheOnlyLinesAreStartEndAndOnePerInterval()
    {
        var text = new StringWriter();
        using (var printer = new ProgressPrinter(text, terminal: false, "  ", lineInterval: TimeSpan.FromHours(1), heartbeat: TimeSpan.Zero))
        {
            var tracker = new ProgressTracker(printer, "evaluation", 1000, "prompts");
            tracker.Start();
            for (int i = 0; i < 1000; i++) tracker.Advance(1);
            tracker.Complete();
        }
        var lines = text.ToString().TrimEnd().Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("  evaluation 0/1,000 prompts (0%)", lines[0]);
        Assert.StartsWith("  evaluation 1,000/1,000 prompts (100%)", lines[1]);
    }

    [Fact]
    public void ALongSilenceGetsAHeartbeatNamingWhatIsRunning()
    {
        var text = new StringWriter();
        using (var printer = new ProgressPrinter(text, terminal: false, heartbeat: TimeSpan.FromMilliseconds(200)) { Activity = "[5/9] code var setup = ..." })
        {
            printer.Line("[5/9] code var setup = ...");
            Thread.Sleep(2500);
        }
        Assert.Contains("... still running: [5/9] code var setup = ... (no news for", text.ToString());
    }

    [Fact]
    public void OnATerminalOneBarIsRedrawnInPlace()
    {
        var text = new StringWriter();
        using (var printer = new ProgressPrinter(text, terminal: true, heartbeat: TimeSpan.Zero))
        {
            var tracker = new ProgressTracker(printer, "evaluation", 4, "prompts");
            tracker.Start();
            tracker.Advance(4);
        }
        string s = text.ToString();
        Assert.StartsWith("\r[........................] evaluation 0/4", s);
        Assert.Contains("\r[########################] evaluation 4/4 prompts (100%)", s);
        Assert.Single(s.TrimEnd().Split('\n')); // one line, redrawn
    }

    [Fact]
    public void DiscoveryReportsMonotoneCountsThatReachTheTotal()
    {
        using var loaded = ModelLoader.LoadWithTokenizer("tracr-xproportion");
        var task = KnownTasks.TracrXProportion;
        var parts = task.Tokenize(task.GenerateForEvaluation(null, 0, 20), null);
        // ACDC counts visited edges (its threshold runs go in lockstep): X-Proportion's edge graph has 23.
        foreach (var (algorithm, stage, total) in new[] { (DiscoveryAlgorithm.Acdc, "ACDC", 23L), (DiscoveryAlgorithm.SubnetworkProbing, "subnetwork probing", 3L), (DiscoveryAlgorithm.Eap, "EAP", 20L) })
        {
            var seen = new List<WorkProgress>();
            CircuitDiscovery.Run(new DiscoveryRequest
            {
                Model = loaded.Model, Task = task, Parts = parts, Algorithm = algorithm, BatchSize = 10,
                Acdc = new AcdcOptions { TauExponents = new[] { -3, -2 }, TauBases = new[] { 1 } },
                SubnetworkProbing = new SubnetworkProbingOptions { Epochs = 3 },
                Progress = new SynchronousProgress<WorkProgress>(seen.Add),
            });
            Assert.All(seen, p => Assert.Equal((stage, total), (p.Stage, p.Total)));
            for (int i = 1; i < seen.Count; i++) Assert.True(seen[i].Done >= seen[i - 1].Done, $"{stage}: report {i} went back");
            Assert.Equal(total, seen[^1].Done);
        }
    }
}
