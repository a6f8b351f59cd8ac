using TorchSharp;
using static TorchSharp.torch;

namespace Workbook.Model;

/// <summary>
/// Tensor arithmetic with numbers that cannot be freed under libtorch's feet. TorchSharp hands every number to libtorch
/// as a native Scalar (the implicit alpha = 1 of <c>a + b</c> and <c>a.add_(b)</c>, the double in <c>t * 0.5</c>,
/// <c>t + eps</c>, <c>t.clamp(0, 1)</c>) and never disposes it: the finalizer does. Once its handle has been passed on,
/// nothing keeps the managed Scalar alive, so a garbage collection during the native call can finalize it while
/// libtorch still reads it: "Expected false to be true ... toFloat at Scalar.h" or "Unknown scalar type", rare alone and
/// regular under memory pressure (the test suite running in parallel). The workbook's tensor code uses these instead:
/// the Scalar 1 lives as long as the process, and any other number is a Scalar disposed after the call, which keeps it
/// alive until the call returns. (Tensor − tensor, ×, ÷ and matmul take no Scalar and need no help.)
/// </summary>
public static class TensorMath
{
    static readonly Scalar One = 1.ToScalar();

    /// <summary>a + b (as <c>a + b</c>, without a temporary alpha).</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary>a + k.</summary>
    public static Tensor Plus(this Tensor a, double k) => WithScalar(k, s => a.add(s, One));

    /// <summary>a += b, in place.</summary>
    public static Tensor PlusInPlace(this Tensor a, Tensor b) => a.add_(b, One);

    /// <summary>
    /// a + b written into a when nothing will differentiate through it (a is a fresh result no one else holds, such as a
    /// product's output), else a new tensor: the same numbers either way, one large temporary fewer without gradients.
    /// (Under autograd the in-place form changed the toy models' training by a rounding, so it keeps the plain form.)
    /// </summary>
    public static Tensor PlusIntoFresh(this Tensor a, Tensor b) =>
        is_grad_enabled() && (a.requires_grad || b.requires_grad) ? a.add(b, One) : a.add_(b, One);

    /// <summary>a += k, in place.</summary>
    public static Tensor PlusInPlace(this Tensor a, double k) => WithScalar(k, s => a.add_(s, One));

    /// <summary>a ·= k, in place.</summary>
    public static Tensor TimesInPlace(this Tensor a, double k) => WithScalar(k, s => a.mul_(s));

    /// <summary>k − a (as <c>k - a</c>: −a + k).</summary>
    public static Tensor SubtractedFrom(this Tensor a, double k)
    {
        using var s = k.ToScalar();
        using var negated = a.negative();
        return negated.add(s, One);
    }

    /// <summary>a · k.</summary>
    public static Tensor Times(this Tensor a, double k) => WithScalar(k, s => a.mul(s));

    /// <summary>a / k.</summary>
    public static Tensor DividedBy(this Tensor a, double k) => WithScalar(k, s => a.div(s));

    /// <summary>a^k, element-wise.</summary>
    public static Tensor Power(this Tensor a, double k) => WithScalar(k, s => a.pow(s));

    /// <summary>k^a, element-wise (k as a 0-dimensional float64 tensor, as <c>pow(k, a)</c> makes it: no Scalar at all).</summary>
    public static Tensor PowerOf(double k, Tensor exponents)
    {
        using var b = tensor(k);
        return pow(b, exponents);
    }

    /// <summary>a clamped to [min, max].</summary>
    public static Tensor ClampedTo(this Tensor a, double min, double max)
    {
        using var lo = min.ToScalar();
        using var hi = max.ToScalar();
        return a.clamp(lo, hi);
    }

    /// <summary>a clamped below at <paramref name="min"/>.</summary>
    public static Tensor AtLeast(this Tensor a, double min) => WithScalar(min, s => a.clamp_min(s));

    /// <summary>a with <paramref name="value"/> where <paramref name="mask"/> is true.</summary>
    public static Tensor FilledWhere(this Tensor a, Tensor mask, double value) => WithScalar(value, s => a.masked_fill(mask, s));

    /// <summary>A new tensor of <paramref name="shape"/> filled with <paramref name="value"/>.</summary>
    public static Tensor Full(long[] shape, double value, ScalarType dtype, Device device) => WithScalar(value, s => full(shape, s, dtype: dtype, device: device));

    // The Scalar lives until the call has returned, then is freed at once rather than by the finalizer.
    static Tensor WithScalar(double k, Func<Scalar, Tensor> call)
    {
        using var s = k.ToScalar();
        return call(s);
    }
}
