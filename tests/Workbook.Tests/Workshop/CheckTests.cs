using Workbook.Model;
using Workbook.Patching;
using Workbook.Workshop;
using static TorchSharp.torch;

namespace Workbook.Tests.Workshop;

/// <summary>
/// The check API: untouched stubs report "not done yet", right answers pass, and each known mistake gets its own hint.
/// The mistakes are made here independently (by hand, with the model's hooks), not read back from the checks.
/// </summary>
public class CheckTests
{
    [Fact]
    public void NumbersPassWithinToleranceAndNameTheMistakeTheyMatch()
    {
        var notDone = Check.Number("0.1", null, 2.0, "answer", 1e-3, "otherwise");
        Assert.Equal(CheckStatus.NotDone, notDone.Status);
        Assert.Contains("not done yet: set answer (it is still null)", notDone.ToString());
        Assert.True(Check.Number("0.1", 2.0005, 2.0, "answer", 1e-3, "otherwise").Passed);
        var mistake = Check.Number("0.1", -2.0, 2.0, "answer", 1e-3, "otherwise", new Mistake<double>(-2.0, "the sign is flipped"));
        Assert.Equal(CheckStatus.Failed, mistake.Status);
        Assert.Contains("the sign is flipped", mistake.Message);
        var other = Check.Number("0.1", 7.0, 2.0, "answer", 1e-3, "look again", new Mistake<double>(-2.0, "the sign is flipped"));
        Assert.Contains("2.000 was expected. look again", other.Message);
        Assert.Contains("finite", Check.Number("0.1", double.NaN, 2.0, "answer", 1e-3, "").Message);
        Assert.Contains("workshop-notdone", notDone.Html());
    }

    [Fact]
    public void TensorsReportShapeBeforeValues()
    {
        using var expected = ones(2, 3);
        Assert.Contains("shape [3, 2], but [2, 3]", Check.Tensor("0.2", ones(3, 2), expected, "t", 1e-4, "").Message);
        Assert.True(Check.Tensor("0.2", ones(2, 3), expected, "t", 1e-4, "").Passed);
        Assert.Contains("doubled", Check.Tensor("0.2", full(2, 3, 2f), expected, "t", 1e-4, "", new Mistake<TorchSharp.torch.Tensor>(full(2, 3, 2f), "doubled")).Message);
        Assert.Equal(CheckStatus.NotDone, Check.Tensor("0.2", null, expected, "t", 1e-4, "").Status);
    }

    [Fact]
    public void MethodologiesNameEveryChoiceThatDiffers()
    {
        Assert.True(MethodologyExercises.NodesMean(Methodology.Parse("node/specific/mean-corrupt/ablate-clean/complement")).Passed);
        var wrong = MethodologyExercises.NodesMean(Methodology.Parse("edge/all/mean-batch/ablate-clean/complement"));
        Assert.Contains("the component is edge, the exercise asks for node", wrong.Message);
        Assert.Contains("the token positions is all, the exercise asks for specific", wrong.Message);
        Assert.Contains("mean-batch averages the current batch only", wrong.Message);
        Assert.DoesNotContain("direction", wrong.Message);
        Assert.Contains("sufficient", MethodologyExercises.Necessity(Methodology.Parse("edge/specific/resample/restore-corrupt/circuit")).Message);
        Assert.Equal(CheckStatus.NotDone, MethodologyExercises.Necessity(null).Status);
    }

    [Fact]
    public void HookExercisesRecogniseTheirTypicalMistakes()
    {
        using var lab = IoiLab.Load();
        // The clean run unchanged: the hook did nothing.
        double clean = lab.LogitDiff(lab.Clean, null);
        Assert.Contains("changed nothing", HooksExercises.ZeroedHead(lab, 0, 0, clean).Message);
        // Every head of layer 0 zeroed via hook_z (a different hook than the check's): the whole layer.
        var allHeads = new HookSet().Replace(HookNames.Z[0], z => zeros_like(z));
        Assert.Contains("every head of the layer", HooksExercises.ZeroedHead(lab, 0, 0, lab.LogitDiff(lab.Clean, allHeads)).Message);
        // One head zeroed through hook_z: the same as zeroing its result, so it passes.
        var oneHead = new HookSet().Replace(HookNames.Z[0], z => { var c = z.clone(); c[.., .., 0] = zeros_like(c[.., .., 0]); return c; });
        Assert.True(HooksExercises.ZeroedHead(lab, 0, 0, lab.LogitDiff(lab.Clean, oneHead)).Passed);

        var (logits, cache) = lab.Model.RunWithCache(lab.Clean, n => n == HookNames.Pattern[0]);
        using (cache)
        {
            var pattern = cache[HookNames.Pattern[0]];
            Assert.True(HooksExercises.AttentionToS2(lab, 0, 0, pattern[0, 0, lab.End, lab.Positions.Subject2].item<float>()).Passed);
            Assert.Contains("indirect object", HooksExercises.AttentionToS2(lab, 0, 0, pattern[0, 0, lab.End, lab.Positions.IndirectObject].item<float>()).Message);
            Assert.Contains("swapped query and key", HooksExercises.AttentionToS2(lab, 0, 0, pattern[0, 0, lab.Positions.Subject2, lab.End].item<float>()).Message);
        }
    }

    [Fact]
    public void PatchingExercisesCompareWithTheEngineAndNameWrongSigns()
    {
        using var lab = IoiLab.Load();
        string resid = HookNames.ResidPost[lab.Model.Config.NLayers - 1], result = HookNames.Result[0];
        var (_, clean) = lab.Model.RunWithCache(lab.Clean, n => n == resid || n == result);
        var (_, corrupt) = lab.Model.RunWithCache(lab.Corrupt, n => n == resid || n == result);
        using (clean)
        using (corrupt)
        {
            var headClean = clean[result][.., .., 0];
            var headCorrupt = corrupt[result][.., .., 0];
            Assert.True(PatchingExercises.PatchedResidEnd(lab, 0, 0, clean[resid] - headClean + headCorrupt).Passed);
            Assert.Contains("signs are reversed", PatchingExercises.PatchedResidEnd(lab, 0, 0, clean[resid] + headClean - headCorrupt).Message);
            Assert.Contains("residual is unchanged", PatchingExercises.PatchedResidEnd(lab, 0, 0, clean[resid]).Message);
            Assert.Contains("zero ablation", PatchingExercises.PatchedResidEnd(lab, 0, 0, clean[resid] - headClean).Message);
            Assert.Contains("shape", PatchingExercises.PatchedResidEnd(lab, 0, 0, clean[resid][0]).Message);
            Assert.Equal(CheckStatus.NotDone, PatchingExercises.PatchedResidEnd(lab, 0, 0, null).Status);
        }
    }
}
