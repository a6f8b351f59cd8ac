using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using TorchSharp;
using Workbook.Embedded;
using Workbook.Circuits;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;
using Workbook.Tasks.Generators;
using Workbook.Tokenization;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Embedded;

/// <summary>
/// The compiled Tracr models against the paper reference: their weights entry by entry (Appendix B, parsed from
/// the spec file), their answers on every prompt of AutoCircuit's datasets, and the Section 5 example — which
/// circuit is faithful depends on the ablation — checked with a slow, literal implementation of the patching equation.
/// </summary>
public class TracrModelTests
{
    // Residual orders transcribed from the spec's Appendix B headings (Tracr sorts basis directions by name, then value).
    static readonly string[] XProportionLabels =
    {
        "frac_prevs", "indices:0", "indices:1", "indices:2", "indices:3", "indices:4", "map", "one",
        "tokens:BOS", "tokens:compiler_pad", "tokens:w", "tokens:x", "tokens:y", "tokens:z",
    };

    static readonly string[] ReverseLabels =
        new[] { "aggregate:1", "aggregate:2", "aggregate:3" }
            .Concat(Enumerable.Range(0, 5).Select(i => $"indices:{i}"))
            .Concat(Enumerable.Range(-5, 10).Select(i => $"map:{i}"))
            .Append("one")
            .Concat(Enumerable.Range(0, 6).Select(i => $"selector_width:{i}"))
            .Append("selector_width_attn_output")
            .Concat(Enumerable.Range(-4, 10).Select(i => $"sequence_map:{i}"))
            .Concat(new[] { "tokens:1", "tokens:2", "tokens:3", "tokens:BOS", "tokens:compiler_pad" })
            .ToArray();

    [Fact]
    public void ResidualDirectionsAreInTracrOrder()
    {
        Assert.Equal(XProportionLabels, TracrXProportion.Residual.Labels);
        Assert.Equal(ReverseLabels, TracrReverse.Residual.Labels);
    }

    [Theory]
    [InlineData("tracr-xproportion", "### B.1")]
    [InlineData("tracr-reverse", "### B.2")]
    public void WeightsEqualTheAppendixEntryByEntry(string alias, string section)
    {
        using var model = alias == TracrXProportion.Alias ? TracrXProportion.Build() : TracrReverse.Build();
        var labels = alias == TracrXProportion.Alias ? XProportionLabels : ReverseLabels;
        var expected = AppendixWeights(model, section, labels);
        int nonzero = 0;
        foreach (var (name, p) in model.named_parameters())
        {
            var want = expected.TryGetValue(name, out var e) ? e : zeros_like(p);
            if (name == "unembed.W_U") want = eye(model.Config.DModel, model.Config.OutputVocab);
            TensorAssert.Close(want, p, 1e-5, name);
            nonzero += (int)p.count_nonzero().item<long>();
        }
        // Guards against an appendix that failed to parse: the counts of listed entries (plus W_U's ones).
        int listed = expected.Values.Sum(t => (int)t.count_nonzero().item<long>());
        Assert.Equal(alias == TracrXProportion.Alias ? 12 + 5 + 2 + 24 + 1 : 10 + 5 + 219 + 3, listed + model.Config.OutputVocab);
        Assert.Equal(listed + model.Config.OutputVocab, nonzero);
    }

    /// <summary>Dense tensors from the "name[index] = value" lines of an Appendix B section.</summary>
    static Dictionary<string, Tensor> AppendixWeights(HookedTransformer model, string section, string[] labels)
    {
        string text = TestFiles.ReadPaperReference();
        int start = text.IndexOf(section, StringComparison.Ordinal);
        Assert.True(start >= 0, $"Section {section} not found in the spec.");
        int open = text.IndexOf("```", start, StringComparison.Ordinal);
        int close = text.IndexOf("```", open + 3, StringComparison.Ordinal);
        var lines = text[(open + 3)..close].Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var shapes = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        var dense = new Dictionary<string, double[]>();
        int Dim(string label) => Array.IndexOf(labels, label) is int i and >= 0 ? i : throw new Exception($"Unknown label '{label}'.");
        void Set(string name, long[] index, double value)
        {
            var shape = shapes[name];
            if (!dense.TryGetValue(name, out var d)) dense[name] = d = new double[shape.Aggregate(1L, (a, b) => a * b)];
            long flat = 0;
            for (int i = 0; i < shape.Length; i++) flat = flat * shape[i] + index[i];
            d[flat] = value;
        }
        static double Num(string s) => double.Parse(s, CultureInfo.InvariantCulture);
        foreach (var line in lines)
        {
            Match m;
            if ((m = Regex.Match(line, @"^W_(E|pos)\[(\d+)\] = (.*)$")).Success)
            {
                string name = m.Groups[1].Value == "E" ? "embed.W_E" : "pos_embed.W_pos";
                if (m.Groups[3].Value.Trim() == "0") continue;
                foreach (var part in m.Groups[3].Value.Split(", "))
                {
                    int colon = part.LastIndexOf(':');
                    Set(name, new long[] { long.Parse(m.Groups[2].Value), Dim(part[..colon]) }, Num(part[(colon + 1)..]));
                }
            }
            else if ((m = Regex.Match(line, @"^layer_(\d+)/mlp\.W_(in|out)\[(.+), (.+)\] = (.+)$")).Success)
            {
                string l = m.Groups[1].Value;
                if (m.Groups[2].Value == "in") Set($"blocks.{l}.mlp.W_in", new long[] { Dim(m.Groups[3].Value), long.Parse(m.Groups[4].Value) }, Num(m.Groups[5].Value));
                else Set($"blocks.{l}.mlp.W_out", new long[] { long.Parse(m.Groups[3].Value), Dim(m.Groups[4].Value) }, Num(m.Groups[5].Value));
            }
            else if ((m = Regex.Match(line, @"^layer_(\d+)/attn\.W_(Q|K|V|O)\[head 0\]\[(.+), (.+)\] = (.+)$")).Success)
            {
                string l = m.Groups[1].Value, w = m.Groups[2].Value;
                var index = w == "O"
                    ? new long[] { 0, long.Parse(m.Groups[3].Value), Dim(m.Groups[4].Value) }
                    : new long[] { 0, Dim(m.Groups[3].Value), long.Parse(m.Groups[4].Value) };
                Set($"blocks.{l}.attn.W_{w}", index, Num(m.Groups[5].Value));
            }
            else throw new Exception($"Unparsed appendix line: {line}");
        }
        return dense.ToDictionary(kv => kv.Key, kv => tensor(kv.Value).reshape(shapes[kv.Key]).to(ScalarType.Float32));
    }

    // ---------------------------------------------------------------------------------------------
    // Datasets

    sealed record TracrPrompts(long[,] Clean, long[,] Corrupt, double[,] Answers, double[,] WrongAnswers);

    // The project's own generator (spec D.5): every input sequence once, each paired with another as its corrupt
    // prompt. AutoCircuit's files hold the same prompts in another order (GeneratorTests compares them where present);
    // the checks below do not depend on the order.
    static TracrPrompts Dataset(PromptDataset dataset)
    {
        int n = dataset.Count;
        var clean = new long[n, 6];
        var corrupt = new long[n, 6];
        var answers = new double[n, 5];
        var wrong = new double[n, 5];
        for (int i = 0; i < n; i++)
        {
            var p = dataset.Prompts[i];
            for (int t = 0; t < 6; t++)
            {
                clean[i, t] = p.Clean.Tokens![t];
                corrupt[i, t] = p.Corrupt.Tokens![t];
            }
            for (int t = 0; t < 5; t++)
            {
                answers[i, t] = p.Answers.Values![t][0];
                wrong[i, t] = p.WrongAnswers.Values![t][0];
            }
        }
        return new TracrPrompts(clean, corrupt, answers, wrong);
    }

    static readonly Lazy<TracrPrompts> XProportionData = new(() => Dataset(TracrGenerator.XProportion()));
    static readonly Lazy<TracrPrompts> ReverseData = new(() => Dataset(TracrGenerator.Reverse()));

    [Fact]
    public void XProportionAnswersEveryDatasetPromptWithin1e4()
    {
        var data = XProportionData.Value;
        Assert.Equal(1024, data.Clean.GetLength(0));
        using var model = TracrXProportion.Build();
        using var scope = NewDisposeScope();
        foreach (var (tokens, answers) in new[] { (data.Clean, data.Answers), (data.Corrupt, data.WrongAnswers) })
        {
            var outputs = model.Forward(tensor(tokens))[.., 1.., 0];   // [B, 5]
            TensorAssert.Close(tensor(answers), outputs, 1e-4, "x-proportion outputs");
        }
    }

    [Fact]
    public void XProportionMatchesTheProgramOnEveryInput()
    {
        // All 4^5 inputs, expected values from the RASP program's definition (not from the dataset).
        var inputs = Enumerable.Range(0, 1024).Select(i => Enumerable.Range(0, 5).Select(k => TracrXProportion.InputSymbols[(i >> (2 * k)) & 3]).ToArray()).ToList();
        using var model = TracrXProportion.Build();
        using var scope = NewDisposeScope();
        var tokens = tensor(inputs.SelectMany(s => TracrXProportion.Tokenizer.EncodePrompt(string.Join(" ", s), prependBos: true)).Select(x => (long)x).ToArray()).reshape(1024, 6);
        var expected = tensor(inputs.SelectMany(s => TracrXProportion.ProgramOutput(s)).ToArray()).reshape(1024, 5);
        TensorAssert.Close(expected, model.Forward(tokens)[.., 1.., 0], 1e-4);
    }

    [Fact]
    public void ReverseAnswersEveryDatasetPromptByArgmax()
    {
        var data = ReverseData.Value;
        Assert.Equal(243, data.Clean.GetLength(0));
        using var model = TracrReverse.Build();
        using var scope = NewDisposeScope();
        foreach (var (tokens, answers) in new[] { (data.Clean, data.Answers), (data.Corrupt, data.WrongAnswers) })
        {
            var predicted = model.Forward(tensor(tokens))[.., 1..].argmax(-1);   // [B, 5]
            long wrong = predicted.ne(tensor(answers).to(ScalarType.Int64)).sum().item<long>();
            Assert.True(wrong == 0, $"reverse: {wrong} of {predicted.numel()} outputs have the wrong argmax");
        }
        // And the program's own definition, on a prompt typed as text.
        var ids = TracrReverse.Tokenizer.EncodePrompt("1 3 3 2 1", prependBos: true);
        var outputs = model.Forward(tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0))[0, 1..].argmax(-1);
        var text = string.Join(" ", outputs.data<long>().Select(i => TracrReverse.OutputSymbols[(int)i]));
        Assert.Equal(string.Join(" ", TracrReverse.ProgramOutput("1 3 3 2 1".Split(' '))), text);
    }

    // ---------------------------------------------------------------------------------------------
    // Section 5: the optimal circuit depends on the ablation (spec A.5, B, C.4).

    static readonly string[] XProportionOurs = { "Resid Start->MLP 0", "MLP 0->A1.0.V", "A1.0->Resid End" };
    static readonly string[] XProportionTheirs = XProportionOurs.Concat(new[] { "Resid Start->A1.0.Q", "Resid Start->A1.0.K" }).ToArray();
    static readonly string[] ReverseOurs = { "Resid Start->A3.0.V", "A3.0->Resid End" };
    static readonly string[] ReverseTheirs =
    {
        "A3.0->Resid End", "MLP 2->A3.0.Q", "Resid Start->A3.0.K", "Resid Start->A3.0.V", "MLP 1->MLP 2", "MLP 0->MLP 1",
        "Resid Start->MLP 1", "A0.0->MLP 0", "Resid Start->MLP 0", "Resid Start->A0.0.V",
    };

    enum Ablation { Resample, Zero }

    /// <summary>Keeps <paramref name="circuit"/> and ablates every other edge (TREE_PATCH, clean input).</summary>
    static (Tensor Clean, Tensor Circuit) RunCircuit(HookedTransformer model, long[,] clean, long[,] corrupt, string[] circuit, Ablation ablation)
    {
        var graph = ComputationGraph.Factorized(model.Config, separateQkv: true);
        var kept = circuit.Select(name => graph.Edge(name[..name.IndexOf("->")], name[(name.IndexOf("->") + 2)..]).Index).ToHashSet();
        Assert.Equal(circuit.Length, kept.Count);
        var cleanTokens = tensor(clean);
        var cleanPass = ReferencePatching.Clean(model, graph, cleanTokens);
        Tensor? patch = ablation == Ablation.Zero ? null : ReferencePatching.Clean(model, graph, tensor(corrupt)).SourceOutputs;
        var patched = ReferencePatching.Run(model, graph, cleanTokens, e => !kept.Contains(e.Index), patch);
        return (cleanPass.Logits[.., 1..], patched.Logits[.., 1..]);
    }

    static double Mse(Tensor clean, Tensor circuit) => (circuit - clean).pow(2).mean().item<double>();

    /// <summary>KL(model ‖ circuit) over the log-softmax of the outputs, averaged over B × 5 output vectors.</summary>
    static double Kl(Tensor clean, Tensor circuit)
    {
        var p = clean.log_softmax(-1);
        var q = circuit.log_softmax(-1);
        return (p.exp() * (p - q)).sum().item<double>() / (clean.shape[0] * clean.shape[1]);
    }

    [Fact]
    public void ReferenceForwardReproducesTheModel()
    {
        // The oracle itself, with nothing ablated, must be the model's function.
        using var scope = NewDisposeScope();
        foreach (var (model, data) in new[] { (TracrXProportion.Build(), XProportionData.Value), (TracrReverse.Build(), ReverseData.Value) })
        {
            using (model)
            {
                var tokens = tensor(data.Clean);
                var reference = ReferencePatching.Clean(model, ComputationGraph.Factorized(model.Config), tokens).Logits;
                TensorAssert.Close(reference, model.Forward(tokens), 1e-5, model.Config.Name);
            }
        }
    }

    [Fact]
    public void XProportionOursIsExactUnderResampleButNotUnderZeroAblation()
    {
        var data = XProportionData.Value;
        using var model = TracrXProportion.Build();
        using var scope = NewDisposeScope();
        var resample = RunCircuit(model, data.Clean, data.Corrupt, XProportionOurs, Ablation.Resample);
        Assert.True(Mse(resample.Clean, resample.Circuit) < 1e-10, $"resample MSE {Mse(resample.Clean, resample.Circuit)}");
        var zero = RunCircuit(model, data.Clean, data.Corrupt, XProportionOurs, Ablation.Zero);
        Assert.Equal(0.0509, Mse(zero.Clean, zero.Circuit), 4);
        var theirs = RunCircuit(model, data.Clean, data.Corrupt, XProportionTheirs, Ablation.Zero);
        Assert.True(Mse(theirs.Clean, theirs.Circuit) < 1e-10, $"theirs, zero ablation: MSE {Mse(theirs.Clean, theirs.Circuit)}");
    }

    [Fact]
    public void ReverseOursIsExactUnderResampleButNotUnderZeroAblation()
    {
        var data = ReverseData.Value;
        using var model = TracrReverse.Build();
        using var scope = NewDisposeScope();
        var resample = RunCircuit(model, data.Clean, data.Corrupt, ReverseOurs, Ablation.Resample);
        Assert.True(Kl(resample.Clean, resample.Circuit) < 1e-10, $"resample KL {Kl(resample.Clean, resample.Circuit)}");
        var zero = RunCircuit(model, data.Clean, data.Corrupt, ReverseOurs, Ablation.Zero);
        Assert.Equal(0.0984, Kl(zero.Clean, zero.Circuit), 4);
        var theirs = RunCircuit(model, data.Clean, data.Corrupt, ReverseTheirs, Ablation.Zero);
        Assert.True(Kl(theirs.Clean, theirs.Circuit) < 1e-10, $"theirs, zero ablation: KL {Kl(theirs.Clean, theirs.Circuit)}");
    }

    // ---------------------------------------------------------------------------------------------
    // The same checks through the patching engine, which must also agree with the slow reference.

    static (Tensor Clean, Tensor Circuit, Tensor Reference) EngineCircuit(HookedTransformer model, TracrPrompts data, string[] circuitEdges, Ablation ablation)
    {
        var graph = ComputationGraph.Factorized(model.Config, separateQkv: true);
        var circuit = Circuit.Parse(graph, circuitEdges);
        var methodology = new Methodology
        {
            Component = Component.Edge,
            Granularity = Granularity.QkvSeparate,
            Positions = TokenPositions.All,
            Value = ablation == Ablation.Zero ? AblationValue.Zero : AblationValue.Resample,
            Direction = PatchDirection.AblateClean,
            Ablate = AblatedSet.Complement,
        };
        var batch = PromptPair.FromArrays(data.Clean, data.Corrupt);
        var patched = CircuitPatching.PatchedLogits(model, circuit, methodology, batch);
        var reference = RunCircuit(model, data.Clean, data.Corrupt, circuitEdges, ablation);
        return (reference.Clean, patched[.., 1..], reference.Circuit);
    }

    [Fact]
    public void TheEngineFindsTheSection5ResultOnXProportion()
    {
        var data = XProportionData.Value;
        using var model = TracrXProportion.Build();
        using var scope = NewDisposeScope();
        var resample = EngineCircuit(model, data, XProportionOurs, Ablation.Resample);
        Assert.True(Mse(resample.Clean, resample.Circuit) < 1e-10, $"engine, resample: MSE {Mse(resample.Clean, resample.Circuit)}");
        var zero = EngineCircuit(model, data, XProportionOurs, Ablation.Zero);
        Assert.Equal(0.0509, Mse(zero.Clean, zero.Circuit), 4);
        TensorAssert.Close(zero.Reference, zero.Circuit, 1e-5, "engine vs reference, zero ablation");
        var theirs = EngineCircuit(model, data, XProportionTheirs, Ablation.Zero);
        Assert.True(Mse(theirs.Clean, theirs.Circuit) < 1e-10, $"engine, theirs: MSE {Mse(theirs.Clean, theirs.Circuit)}");
    }

    [Fact]
    public void TheEngineFindsTheSection5ResultOnReverse()
    {
        var data = ReverseData.Value;
        using var model = TracrReverse.Build();
        using var scope = NewDisposeScope();
        var resample = EngineCircuit(model, data, ReverseOurs, Ablation.Resample);
        Assert.True(Kl(resample.Clean, resample.Circuit) < 1e-10, $"engine, resample: KL {Kl(resample.Clean, resample.Circuit)}");
        TensorAssert.Close(resample.Reference, resample.Circuit, 1e-4, "engine vs reference, resample");
        var zero = EngineCircuit(model, data, ReverseOurs, Ablation.Zero);
        Assert.Equal(0.0984, Kl(zero.Clean, zero.Circuit), 4);
        TensorAssert.Close(zero.Reference, zero.Circuit, 1e-4, "engine vs reference, zero ablation");
        var theirs = EngineCircuit(model, data, ReverseTheirs, Ablation.Zero);
        Assert.True(Kl(theirs.Clean, theirs.Circuit) < 1e-10, $"engine, theirs: KL {Kl(theirs.Clean, theirs.Circuit)}");
    }
}
