using System.Text;

namespace Workbook.Tests.Build;

/// <summary>
/// The build marks libLibTorchSharp.so's GLIBCXX_3.4.32 requirement weak where the system lacks that version,
/// in the NuGet cache (which a notebook's #r "nuget: TorchSharp-cpu" copies from) and in build outputs.
/// Read with an ELF parser of the test's own, independent of the build task.
/// </summary>
public class TorchSharpNativeFixTests
{
    const string Version = "GLIBCXX_3.4.32";

    static bool SystemHasVersion()
    {
        foreach (var p in new[] { "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib64/libstdc++.so.6", "/usr/lib64/libstdc++.so.6" })
            if (File.Exists(p)) return Encoding.ASCII.GetString(File.ReadAllBytes(p)).Contains(Version + "\0");
        return true;
    }

    /// <summary>Flags of the version requirement named <paramref name="version"/> (null when the file does not require it).</summary>
    static int? RequirementFlags(string path, string version)
    {
        var b = File.ReadAllBytes(path);
        ulong shoff = BitConverter.ToUInt64(b, 0x28);
        int entsize = BitConverter.ToUInt16(b, 0x3A), count = BitConverter.ToUInt16(b, 0x3C);
        for (int i = 0; i < count; i++)
        {
            int sh = (int)shoff + i * entsize;
            if (BitConverter.ToUInt32(b, sh + 4) != 0x6ffffffe) continue; // SHT_GNU_verneed
            int offset = (int)BitConverter.ToUInt64(b, sh + 24), entries = (int)BitConverter.ToUInt32(b, sh + 44);
            int linkSection = (int)shoff + (int)BitConverter.ToUInt32(b, sh + 40) * entsize;
            int strtab = (int)BitConverter.ToUInt64(b, linkSection + 24);
            int vn = offset;
            for (int n = 0; n < entries; n++)
            {
                int aux = vn + (int)BitConverter.ToUInt32(b, vn + 8);
                for (int k = 0; k < BitConverter.ToUInt16(b, vn + 2); k++)
                {
                    int name = strtab + (int)BitConverter.ToUInt32(b, aux + 8);
                    int end = Array.IndexOf(b, (byte)0, name);
                    if (Encoding.ASCII.GetString(b, name, end - name) == version) return BitConverter.ToUInt16(b, aux + 4);
                    aux += (int)BitConverter.ToUInt32(b, aux + 12);
                }
                vn += (int)BitConverter.ToUInt32(b, vn + 12);
            }
        }
        return null;
    }

    [SkippableFact]
    public void NuGetCacheAndOutputCopiesLoadOnThisSystem()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "The GLIBCXX fix only concerns Linux.");
        Skip.If(SystemHasVersion(), $"This system's libstdc++ provides {Version}; the build leaves TorchSharp untouched.");
        string root = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } env
            ? env
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var copies = new[]
        {
            Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so"),
            Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so"),
        };
        foreach (var copy in copies)
        {
            Assert.True(File.Exists(copy), $"{copy} is missing");
            var flags = RequirementFlags(copy, Version);
            Assert.True(flags is null || (flags & 2) != 0, $"{copy} still requires {Version} strictly (flags {flags}).");
        }
    }
}
