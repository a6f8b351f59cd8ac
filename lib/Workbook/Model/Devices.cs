using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Workbook.Model;

/// <summary>Compute devices by name ("cpu", "cuda", "cuda:1"), with a clear message when CUDA is unavailable.</summary>
public static class Devices
{
    static bool _allowTf32;
    static bool _cudaReady;

    /// <summary>
    /// Whether float32 matmuls on CUDA may use TF32 tensor cores (faster, about 1e-3 relative error).
    /// Off unless the user asks (<c>--allow-tf32</c>), so CUDA results match the CPU to float32 precision.
    /// Applied to libtorch when a CUDA device is parsed, and at once when set after that.
    /// </summary>
    public static bool AllowTf32
    {
        get => _allowTf32;
        set
        {
            _allowTf32 = value;
            if (_cudaReady) ApplyTf32();
        }
    }

    /// <summary>What libtorch reports for TF32 in float32 matmuls (null before CUDA is initialised, or if it cannot say).</summary>
    public static bool? Tf32InEffect
    {
        get
        {
            if (!_cudaReady) return null;
            try { return backends.cuda.matmul.allow_tf32; }
            catch (Exception) { return null; }
        }
    }

    /// <summary>The device name that picks CUDA when a CUDA device can be used and the CPU otherwise.</summary>
    public const string Auto = "auto";

    /// <summary>The device names a user may give, for messages.</summary>
    public const string Names = "cpu, cuda, cuda:N or auto";

    /// <summary>
    /// <c>auto</c> resolved to <c>cuda</c> when libtorch can use a CUDA device here and to <c>cpu</c> otherwise; any other
    /// name is returned unchanged (and checked by <see cref="Parse"/>).
    /// </summary>
    public static string Resolve(string name) =>
        name.Trim().Equals(Auto, StringComparison.OrdinalIgnoreCase) ? (CudaAvailable() ? "cuda" : "cpu") : name;

    /// <summary>Whether a CUDA device can be used (a CUDA build of libtorch and a visible GPU). Never throws.</summary>
    public static bool CudaAvailable()
    {
        try
        {
            return TryInitializeDeviceType(DeviceType.CUDA) && cuda.is_available() && cuda.device_count() > 0;
        }
        catch (Exception)
        {
            return false; // a CPU-only libtorch: the CPU backend stays usable
        }
    }

    public static Device Parse(string name)
    {
        if (name is not null && name.Trim().Equals(Auto, StringComparison.OrdinalIgnoreCase)) name = Resolve(name);
        if (string.IsNullOrWhiteSpace(name) || name.Equals("cpu", StringComparison.OrdinalIgnoreCase)) return CPU;
        if (name.StartsWith("cuda", StringComparison.OrdinalIgnoreCase))
        {
            int index = 0;
            if (name.Length > 4 && (name[4] != ':' || !int.TryParse(name.AsSpan(5), out index) || index < 0))
                throw new ArgumentException($"Device '{name}' is not valid: use {Names}.");
            EnsureCuda(name);
            if (index >= cuda.device_count())
                throw new ArgumentException($"Device '{name}' does not exist: {cuda.device_count()} CUDA device(s) found.");
            _cudaReady = true;
            ApplyTf32();
            return new Device(DeviceType.CUDA, index);
        }
        throw new ArgumentException($"Device '{name}' is not valid: use {Names}.");
    }

    static void ApplyTf32()
    {
        try
        {
            backends.cuda.matmul.allow_tf32 = _allowTf32;
        }
        catch (Exception e) when (_allowTf32)
        {
            throw new InvalidOperationException($"Could not allow TF32 for float32 matmuls: {e.Message.Split('\n')[0]}", e);
        }
        catch (Exception)
        {
            // Full float32 precision is libtorch's default for matmuls; `workbook selfcheck` measures what is in effect.
        }
        try
        {
            backends.cudnn.allow_tf32 = _allowTf32; // convolutions and RNNs only: these models have none
        }
        catch (Exception)
        {
            // Newer libtorch versions may object to the legacy cuDNN flag; nothing here depends on it.
        }
    }

    /// <summary>Whether two devices are the same (type and index; "cuda" without an index means cuda:0).</summary>
    public static bool Same(Device a, Device b) =>
        a.type == b.type && (a.type == DeviceType.CPU || Math.Max(0, a.index) == Math.Max(0, b.index));

    /// <summary>Waits until every queued kernel on <paramref name="device"/> has finished (a no-op on the CPU). Timing needs it.</summary>
    public static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize(device);
    }

    /// <summary>
    /// A human-readable name of the hardware behind <paramref name="device"/>: the GPU model (from <c>nvidia-smi</c> or the
    /// driver's /proc entry) or the CPU model and its thread count. Never throws; "unknown" when nothing says.
    /// </summary>
    public static string Describe(Device device)
    {
        try
        {
            return device.type == DeviceType.CUDA ? DescribeGpu(Math.Max(0, (int)device.index)) : DescribeCpu();
        }
        catch (Exception)
        {
            return "unknown";
        }
    }

    static string DescribeGpu(int index)
    {
        // nvidia-smi numbers GPUs in PCI order, CUDA by default fastest first: on a one-GPU machine they agree.
        string? name = RunQuietly("nvidia-smi", $"--query-gpu=name,memory.total --format=csv,noheader -i {index}");
        if (!string.IsNullOrWhiteSpace(name)) return name.Trim();
        const string procRoot = "/proc/driver/nvidia/gpus";
        if (Directory.Exists(procRoot))
        {
            var gpus = Directory.GetDirectories(procRoot).OrderBy(d => d, StringComparer.Ordinal).ToList();
            if (index < gpus.Count)
            {
                var model = File.ReadLines(Path.Combine(gpus[index], "information"))
                    .FirstOrDefault(l => l.StartsWith("Model:", StringComparison.Ordinal));
                if (model != null) return model["Model:".Length..].Trim();
            }
        }
        return $"CUDA device {index}";
    }

    static string DescribeCpu()
    {
        string model = "CPU";
        if (File.Exists("/proc/cpuinfo"))
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            if (line != null && line.IndexOf(':') is int colon and >= 0) model = line[(colon + 1)..].Trim();
        }
        return $"{model} ({torch.get_num_threads()} threads)";
    }

    static string? RunQuietly(string file, string arguments)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo(file, arguments)
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            });
            if (p == null) return null;
            string output = p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(10_000)) { p.Kill(); return null; }
            return p.ExitCode == 0 ? output : null;
        }
        catch (Exception)
        {
            return null; // not installed
        }
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
