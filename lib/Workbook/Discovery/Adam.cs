using TorchSharp;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Discovery;

/// <summary>
/// Adam (Kingma and Ba; PyTorch's update, the same arithmetic as TorchSharp's <c>optim.Adam</c> with its defaults:
/// betas 0.9 and 0.999, eps 1e-8, no weight decay), with every number held in a Scalar that outlives the native call.
/// TorchSharp's own optimizer converts its betas and step sizes into temporary Scalars on every step, which the
/// finalizer may free while libtorch reads them (see <see cref="TensorMath"/>); subnetwork probing takes thousands of steps.
/// </summary>
internal sealed class Adam : IDisposable
{
    const double Beta1 = 0.9, Beta2 = 0.999, Epsilon = 1e-8;

    readonly IReadOnlyList<TorchSharp.Modules.Parameter> _parameters;
    readonly double _learningRate;
    readonly Tensor[] _average, _averageSquare;
    readonly Scalar _beta1 = Beta1.ToScalar(), _beta2 = Beta2.ToScalar(), _oneMinusBeta1 = (1 - Beta1).ToScalar(), _oneMinusBeta2 = (1 - Beta2).ToScalar(),
        _epsilon = Epsilon.ToScalar();
    int _step;

    public Adam(IReadOnlyList<TorchSharp.Modules.Parameter> parameters, double learningRate)
    {
        _parameters = parameters;
        _learningRate = learningRate;
        _average = parameters.Select(p => zeros_like(p).DetachFromDisposeScope()).ToArray();
        _averageSquare = parameters.Select(p => zeros_like(p).DetachFromDisposeScope()).ToArray();
    }

    public void ZeroGrad()
    {
        foreach (var p in _parameters) p.grad?.zero_();
    }

    /// <summary>One update of every parameter from its gradient.</summary>
    public void Step()
    {
        _step++;
        double correction1 = 1 - Math.Pow(Beta1, _step), correction2 = 1 - Math.Pow(Beta2, _step);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var stepSize = (-_learningRate / correction1).ToScalar();
        for (int i = 0; i < _parameters.Count; i++)
        {
            var grad = _parameters[i].grad;
            if (grad is null) continue;
            _average[i].mul_(_beta1).add_(grad, _oneMinusBeta1);
            _averageSquare[i].mul_(_beta2).addcmul_(grad, grad, _oneMinusBeta2);
            var denominator = _averageSquare[i].sqrt().DividedBy(Math.Sqrt(correction2)).add_(_epsilon);
            _parameters[i].addcdiv_(_average[i], denominator, stepSize);
        }
    }

    public void Dispose()
    {
        foreach (var t in _average.Concat(_averageSquare)) t.Dispose();
        foreach (var s in new[] { _beta1, _beta2, _oneMinusBeta1, _oneMinusBeta2, _epsilon }) s.Dispose();
    }
}
