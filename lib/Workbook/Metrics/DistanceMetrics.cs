using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Metrics;

/// <summary>KL(model ‖ circuit) of the output distributions, per prompt, averaged over read positions.</summary>
public sealed record KlMetric()
    : MetricKind("kl", "KL divergence from the unpatched model's output distribution", MetricNeeds.None)
{
    public override Tensor Compute(MetricInputs inputs)
    {
        var target = inputs.Model.log_softmax(-1);
        var circuit = inputs.Circuit.log_softmax(-1);
        var kl = (target.exp() * (target - circuit)).sum(-1).mean(new long[] { 1 });
        return kl.AtLeast(0.0);
    }
}

/// <summary>Mean squared difference between the circuit's and the unpatched model's outputs.</summary>
public sealed record MseMetric()
    : MetricKind("mse", "mean squared error against the unpatched model's output", MetricNeeds.None)
{
    public override Tensor Compute(MetricInputs inputs) => (inputs.Circuit - inputs.Model).Power(2).mean(new long[] { 1, 2 });
}
