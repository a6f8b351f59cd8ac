using TorchSharp;
using static TorchSharp.torch;

namespace Workbook.Tests.Support;

public static class TensorAssert
{
    public static float[] ToArray(Tensor t) => t.detach().cpu().to(ScalarType.Float32).contiguous().data<float>().ToArray();

    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        Assert.Equal(a.shape, b.shape);
        using var d = (a.detach().cpu().to(ScalarType.Float64) - b.detach().cpu().to(ScalarType.Float64)).abs().max();
        return d.item<double>();
    }

    public static void Close(Tensor expected, Tensor actual, double tol, string what = "")
    {
        double diff = MaxAbsDiff(expected, actual);
        Assert.True(diff <= tol, $"{what}: max |difference| {diff:G4} exceeds {tol:G4}.");
    }

    public static void Close(float[] expected, Tensor actual, double tol, string what = "")
    {
        var a = ToArray(actual);
        Assert.Equal(expected.Length, a.Length);
        double max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - expected[i]));
        Assert.True(max <= tol, $"{what}: max |difference| {max:G4} exceeds {tol:G4}.");
    }

    public static Tensor Tokens(long[,] tokens) => tensor(tokens);
}
