using Workbook.Checkpoints;
using Workbook.Discovery;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Discovery;

/// <summary>
/// EAP-IG against EAP and against integrated gradients' own defining properties, on the reference GPT-2 checkpoint with
/// the Reverse prompts (every edge matters there). Ground-truth ranking on the Tracr models is in
/// <see cref="TracrDiscoveryTests"/>, whose theory covers every algorithm.
/// </summary>
public class IntegratedGradientsTests
{
    static readonly Lazy<HookedTransformer> Model = new(() => ModelLoader.Load(TestFiles.Fixture("tiny-gpt2")));
    static readonly TaskDefinition Task = KnownTasks.TracrReverse;
    static readonly Lazy<IReadOnlyList<TokenizedDataset>> Parts = new(() => Task.Tokenize(Task.GenerateForEvaluation(null, 5, 8), null));

    static double[] Scores(DiscoveryAlgorithm algorithm, int steps = 5, SearchSpace search = SearchSpace.Edge) => CircuitDiscovery.Run(new DiscoveryRequest
    {
        Model = Model.Value, Task = Task, Parts = Parts.Value, Algorithm = algorithm, Search = search, IntegratedGradientSteps = steps, BatchSize = 5,
    }).Scores.Scores.ToArray();

    static double MaxDifference(double[] a, double[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();

    [Theory]
    [InlineData(SearchSpace.Edge)]
    [InlineData(SearchSpace.Node)]
    public void OneStepIsEap(SearchSpace search)
    {
        var eap = Scores(DiscoveryAlgorithm.Eap, search: search);
        // Inputs: one step is α = 1, the plain clean run, through the very same code: bit for bit.
        Assert.Equal(eap, Scores(DiscoveryAlgorithm.EapIgInputs, 1, search));
        // Activations: μ = 0 through the general patching path (per-site einsums rather than one matrix product): the same
        // derivative, summed in another order in float32, so equal to rounding.
        var activations = Scores(DiscoveryAlgorithm.EapIgActivations, 1, search);
        double scale = eap.Max(Math.Abs);
        Assert.True(MaxDifference(eap, activations) <= 1e-4 * scale, $"max |eap - eap-ig-activations(1)| = {MaxDifference(eap, activations)} (scale {scale})");
        // More steps do change the scores (the test could fail).
        Assert.True(MaxDifference(eap, Scores(DiscoveryAlgorithm.EapIgInputs, 4, search)) > 1e-3 * scale);
    }

    [Theory]
    [InlineData(DiscoveryAlgorithm.EapIgInputs)]
    [InlineData(DiscoveryAlgorithm.EapIgActivations)]
    public void ScoresConvergeAsStepsDouble(DiscoveryAlgorithm algorithm)
    {
        // A Riemann sum of a smooth integrand: the change from n to 2n steps shrinks about as 1/n.
        var s = new[] { 2, 4, 8, 16 }.Select(n => Scores(algorithm, n)).ToArray();
        var changes = Enumerable.Range(0, 3).Select(i => MaxDifference(s[i], s[i + 1])).ToArray();
        Assert.True(changes[1] < changes[0] && changes[2] < changes[1], $"{algorithm}: changes {string.Join(", ", changes)}");
        Assert.True(changes[2] < 0.5 * changes[0], $"{algorithm}: changes {string.Join(", ", changes)}");
    }

    [Fact]
    public void ActivationScoresAreCompleteWhenIntegratedFinely()
    {
        // Completeness of integrated gradients along the masks: Σ_e ∫ ∂L/∂m_e dμ = L(every edge patched) − L(none), each the
        // mean over prompts; measured here by the patching engine directly, with no attribution code involved.
        var model = Model.Value;
        var scores = Scores(DiscoveryAlgorithm.EapIgActivations, 64);
        var graph = CircuitDiscovery.SearchGraph(model.Config, Task, SearchSpace.Edge);
        using var data = DiscoveryData.Prepare(model, Task, Parts.Value, 5);
        double difference = 0;
        using (no_grad())
            foreach (var batch in data.Batches)
            {
                using var scope = NewDisposeScope();
                var values = PatchValues.Compute(model, graph, AblationValue.Resample, PatchDirection.AblateClean, batch.Pair);
                double Loss(double mask)
                {
                    using var masks = PatchMasks.Filled(graph, mask, seqLen: batch.Pair.SeqLen);
                    if (batch.Prefix > 0) foreach (var m in masks.Masks) m!.narrow(1, 0, batch.Prefix).zero_();
                    return data.PerPromptLoss(DiscoveryTarget.LogitDiff, Patcher.Run(model, masks, values, batch.Pair.Clean), batch).sum().item<double>();
                }
                difference += Loss(1) - Loss(0);
            }
        difference /= data.PromptCount;
        double sum = scores.Sum();
        Assert.True(Math.Abs(sum - difference) <= 0.02 * Math.Abs(difference), $"Σ scores {sum} vs L(all patched) − L(clean) {difference}");
    }

    [Fact]
    public void BadSettingsAreRefusedBeforeAnyRun()
    {
        var e = Assert.Throws<ArgumentException>(() => Scores(DiscoveryAlgorithm.EapIgInputs, 0));
        Assert.Contains("integration steps", e.Message);
        e = Assert.Throws<ArgumentException>(() => CircuitDiscovery.Run(new DiscoveryRequest
        {
            Model = Model.Value, Task = Task, Parts = Parts.Value, Algorithm = DiscoveryAlgorithm.EapIgInputs, Ablation = AblationValue.Zero,
        }));
        Assert.Contains("resample", e.Message);
        Assert.Equal(DiscoveryAlgorithm.EapIgInputs, DiscoveryNames.ParseAlgorithm("eap-ig"));
        Assert.Equal(DiscoveryAlgorithm.EapIgActivations, DiscoveryNames.ParseAlgorithm("EAP-IG-activations"));
    }
}
