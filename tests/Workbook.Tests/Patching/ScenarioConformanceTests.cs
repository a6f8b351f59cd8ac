using Workbook.Checkpoints;
using Workbook.Patching;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Patching;

/// <summary>Every reference scenario (computed by HuggingFace plus an independent factorized forward) to 1e-4.</summary>
public class ScenarioConformanceTests
{
    public static IEnumerable<object[]> Scenarios()
    {
        foreach (var model in new[] { "tiny-gpt2", "tiny-neox" })
            foreach (var s in ScenarioFixture.Load($"{model}-scenarios.json").Scenarios)
                yield return new object[] { model, s.Name };
    }

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void ReproducesScenarioLogits(string model, string scenario)
    {
        var expected = ScenarioFixture.Load($"{model}-scenarios.json")[scenario];
        var file = ScenarioFile.Read(TestFiles.Fixture($"{model}-scenarios.json"));
        using var m = ModelLoader.Load(TestFiles.Fixture(model));
        using var scope = NewDisposeScope();
        var logits = file.Run(m, file.Scenarios.Single(s => s.Name == scenario));
        TensorAssert.Close(expected.Logits, logits, 1e-4, $"{model}/{scenario}");
    }
}
