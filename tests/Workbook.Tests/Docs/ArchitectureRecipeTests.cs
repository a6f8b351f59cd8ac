using System.Text.Json;
using Workbook.Checkpoints;
using Workbook.Diagnostics;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;
using Workbook.Tests.Cli;
using static TorchSharp.torch;

namespace Workbook.Tests.Docs;

/// <summary>
/// The recipes of docs/architecture.md, followed through the public API with throwaway pieces: a model, a task, an
/// ablation value and a metric are added exactly as the recipes say, and then the command line uses all four together.
/// If a recipe stops working, this test says which step broke.
/// </summary>
public class ArchitectureRecipeTests
{
    // ---- "How to add an ablation value": a record with its label, legend, description and needs, and its Compute.

    /// <summary>Each source keeps its own output on the input prompt: patching with it must change nothing.</summary>
    sealed record OwnOutputAblation() : AblationValue("own-output", "Own output",
        "the source's own unpatched output on the input prompt (an identity, for tests)", AblationNeeds.None)
    {
        public override PatchValues Compute(AblationContext context) => new(context.RecordSources(context.InputPrompts));
    }

    // ---- "How to add a metric": a record with its label, description and needs, and its Compute over read outputs [B, P, V].

    /// <summary>How many vocabulary entries score above the answer (0: the answer is the top prediction).</summary>
    sealed record AnswerRankMetric() : MetricKind("answer-rank", "number of tokens with a larger logit than the answer (0 = top-1)", MetricNeeds.TokenAnswers)
    {
        public override Tensor Compute(MetricInputs inputs)
        {
            var answer = inputs.Circuit.gather(-1, inputs.Targets.AnswerTensor(inputs.Circuit.device)[.., .., ..1]); // [B, P, 1]
            return inputs.Circuit.gt(answer).sum(-1).to(ScalarType.Float64).mean(new long[] { 1 });
        }
    }

    // ---- "How to add a model": a config (and weights) registered under a name.

    static readonly TransformerConfig TinyConfig = new()
    {
        Name = "recipe-tiny", Architecture = Architecture.Gpt2, NLayers = 2, DModel = 16, NHeads = 2, DHead = 8, DMlp = 32, DVocab = 20, NCtx = 8,
    };

    // ---- "How to add a task": prompts (here token ids), answers, and where the metrics read.

    static TaskDefinition RecipeTask() => new()
    {
        Name = "recipe-task", Description = "six-token prompts whose answer is the first token", PreTokenized = true,
        PaperModel = "recipe-tiny", PaperCircuit = "none", PaperMetric = "answer-rank", PaperPromptCount = 8, DefaultBatchSize = 4,
        Generate = (_, seed, count) =>
        {
            var rng = new Random(seed);
            var prompts = Enumerable.Range(0, count ?? 8).Select(_ =>
            {
                var clean = Enumerable.Range(0, 6).Select(_ => rng.Next(20)).ToArray();
                var corrupt = clean.Select((t, i) => i % 2 == 0 ? rng.Next(20) : t).ToArray();
                return new TaskPrompt(PromptInput.FromTokens(clean), PromptInput.FromTokens(corrupt),
                    AnswerList.FromTokenIds(new[] { new[] { clean[0] } }), AnswerList.FromTokenIds(new[] { new[] { (clean[0] + 1) % 20 } }));
            }).ToList();
            return new[] { new PromptDataset { Name = "recipe", WordIdxs = new WordPositions(Array.Empty<KeyValuePair<string, int>>()), Prompts = prompts } };
        },
    };

    [Fact]
    public void AModelATaskAnAblationValueAndAMetricAddedByTheRecipesWorkFromTheCommandLine()
    {
        {
            using var value = AblationValue.Vocabulary.Register(AblationValue.SingleSpelling(new OwnOutputAblation()));
            using var metric = MetricKind.Vocabulary.Register(MetricKind.SingleSpelling(new AnswerRankMetric()));
            using var model = EmbeddedModels.Register(new EmbeddedModel("recipe-tiny", "random weights (recipe test)", _ => PatchingWorkload.RandomModel(TinyConfig, seed: 5)));
            using var task = KnownTasks.Register(RecipeTask());
            string dir = Directory.CreateTempSubdirectory("wb-recipe").FullName;
            try
            {
                string circuit = Path.Combine(dir, "circuit.json");
                File.WriteAllText(circuit, """{"edges":[{"src":"Resid Start","dest":"A0.1.Q","position":null},{"src":"A1.0","dest":"Resid End","position":null}]}""");

                // The new value and metric are listed in the help and read back from their labels.
                var help = CliRunner.Run("eval", "--help").Out;
                Assert.Contains("own-output", help);
                Assert.Contains("answer-rank", help);
                Assert.Equal(new OwnOutputAblation(), Methodology.Parse("edge/all/own-output/ablate-clean/complement").Value);

                // The model lists its hooks, from the declarations.
                var hooks = CliRunner.Run("hooks", "--model", "recipe-tiny");
                Assert.True(hooks.ExitCode == 0, hooks.Err);
                Assert.Contains("blocks.1.hook_resid_post", hooks.Out);

                // All four together: keeping the circuit and patching the rest with each source's own output is the
                // unpatched model, so logit difference recovered is 100 % and the answer's rank is the model's own.
                var run = CliRunner.Run("eval", "--model", "recipe-tiny", "--task", "recipe-task", "--circuit", circuit, "--methodology",
                    "edge/all/own-output/ablate-clean/complement", "--metric", "answer-rank,logit-diff-recovered,correct-percent", "--json");
                Assert.True(run.ExitCode == 0, run.Err);
                var rows = JsonDocument.Parse(run.Out).RootElement.GetProperty("rows").EnumerateArray().ToList();
                Assert.Equal(3 * 8, rows.Count);
                Assert.All(rows, r => Assert.Equal("edge/all/own-output/ablate-clean/complement", r.GetProperty("methodology").GetString()));
                Assert.All(rows.Where(r => r.GetProperty("metric").GetString() == "logit-diff-recovered"), r => Assert.InRange(r.GetProperty("value").GetDouble(), 99.99, 100.01)); // float32 rounding of Δ = 0
                // Rank 0 exactly when the answer is the argmax (correct-percent 100), prompt by prompt.
                var rank = rows.Where(r => r.GetProperty("metric").GetString() == "answer-rank").ToDictionary(r => r.GetProperty("prompt").GetInt32(), r => r.GetProperty("value").GetDouble());
                foreach (var correct in rows.Where(r => r.GetProperty("metric").GetString() == "correct-percent"))
                    Assert.Equal(correct.GetProperty("value").GetDouble() == 100, rank[correct.GetProperty("prompt").GetInt32()] == 0);
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
        }
        // Registrations end with their scopes.
        Assert.Null(AblationValue.Vocabulary.TryParse("own-output"));
        Assert.DoesNotContain(KnownTasks.All, t => t.Name == "recipe-task");
        Assert.False(EmbeddedModels.TryGet("recipe-tiny", out _));
    }

    [Fact]
    public void ARegisteredSpellingMustNotShadowAnotherOrFailToReadBack()
    {
        Assert.Throws<ArgumentException>(() => AblationValue.Vocabulary.Register(AblationValue.SingleSpelling(AblationValue.Zero)));
        Assert.Throws<ArgumentException>(() => MetricKind.Vocabulary.Register(new Util.VocabularyEntry<MetricKind>("never", "reads nothing back", _ => null, new[] { new AnswerRankMetric() })));
    }
}
