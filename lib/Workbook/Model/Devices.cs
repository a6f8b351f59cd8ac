using TorchSharp;
using static TorchSharp.torch;

namespace Workbook.Model;

/// <summary>Compute devices by name ("cpu", "cuda", "cuda:1"), with a clear message when CUDA is unavailable.</summary>
public static class Devices
{
    /// <summary>
    /// Whether float32 matmuls on CUDA may use TF32 tensor cores (faster, about 1e-3 relative error).
    /// Off unless the user asks (<c>--allow-tf32</c>), so CUDA results match the CPU to float32 precision.
    /// </summary>
    public static bool AllowTf32 { get; set; }

    public static Device Parse(string name)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Equals("cpu", StringComparison.OrdinalIgnoreCase)) return CPU;
        if (name.StartsWith("cuda", StringComparison.OrdinalIgnoreCase))
        {
            int index = 0;
            if (name.Length > 4 && (name[4] != ':' || !int.TryParse(name.AsSpan(5), out index) || index < 0))
                throw new ArgumentException($"Device '{name}' is not valid: use cpu, cuda or cuda:N.");
            EnsureCuda(name);
            if (index >= cuda.device_count())
                throw new ArgumentException($"Device '{name}' does not exist: {cuda.device_count()} CUDA device(s) found.");
            backends.cuda.matmul.allow_tf32 = AllowTf32;
            backends.cudnn.allow_tf32 = AllowTf32;
            return new Device(DeviceType.CUDA, index);
        }
        throw new ArgumentException($"Device '{name}' is not valid: use cpu, cuda or cuda:N.");
    }

    static void EnsureCuda(string requested)
    {
        bool available;
        string? reason = null;
        try
        {
            InitializeDeviceType(DeviceType.CUDA);
            available = cuda.is_available();
        }
        catch (Exception e)
        {
            available = false;
            reason = e.Message.Split('\n')[0];
        }
        if (!available)
            throw new CudaUnavailableException(
                $"CUDA was requested ('{requested}') but is not available{(reason != null ? $": {reason}" : "")}. " +
                "This build of the workbook uses TorchSharp's CPU backend unless built with -p:TorchBackend=cuda, " +
                "or run against a CUDA libtorch (see README, 'Running on a GPU'). Use --device cpu to run on the CPU.");
    }
}

/// <summary>Thrown when a CUDA device is requested on a machine or build without CUDA.</summary>
public sealed class CudaUnavailableException : Exception
{
    public CudaUnavailableException(string message) : base(message) { }
}
