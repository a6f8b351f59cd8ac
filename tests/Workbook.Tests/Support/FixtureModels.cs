using Workbook.Checkpoints;
using Workbook.Model;
using Workbook.Patching;

namespace Workbook.Tests.Support;

/// <summary>
/// The two reference checkpoints with their scenario prompts, loaded once per test run and shared by the engine's
/// property tests (read-only: forward passes only).
/// </summary>
public static class FixtureModels
{
    static readonly Lazy<(HookedTransformer Model, ScenarioFixture Fixture)> Gpt2 = new(() => Load("tiny-gpt2"));
    static readonly Lazy<(HookedTransformer Model, ScenarioFixture Fixture)> NeoX = new(() => Load("tiny-neox"));

    static (HookedTransformer, ScenarioFixture) Load(string name) =>
        (ModelLoader.Load(TestFiles.Fixture(name)), ScenarioFixture.Load($"{name}-scenarios.json"));

    /// <summary>A fixture model ("tiny-gpt2" or "tiny-neox") and its scenarios' clean/corrupt prompt pair.</summary>
    public static (HookedTransformer Model, PromptPair Batch) WithPrompts(string model)
    {
        var (m, f) = model switch
        {
            "tiny-gpt2" => Gpt2.Value,
            "tiny-neox" => NeoX.Value,
            _ => throw new ArgumentException($"No fixture model '{model}'."),
        };
        return (m, PromptPair.FromArrays(f.Clean, f.Corrupt));
    }
}
