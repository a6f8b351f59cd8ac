using System.Buffers.Binary;
using System.IO.Compression;

namespace Workbook.Tests.Support;

/// <summary>
/// A minimal PNG reader for checking screenshots: 8-bit RGB or RGBA, non-interlaced (what Chromium writes).
/// Pixels are returned as RGB bytes.
/// </summary>
public sealed class PngImage
{
    public int Width { get; }
    public int Height { get; }
    readonly byte[] _rgb;

    PngImage(int width, int height, byte[] rgb)
    {
        Width = width;
        Height = height;
        _rgb = rgb;
    }

    public (byte R, byte G, byte B) this[int x, int y] => (_rgb[(y * Width + x) * 3], _rgb[(y * Width + x) * 3 + 1], _rgb[(y * Width + x) * 3 + 2]);

    public static PngImage Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 8 || bytes[0] != 0x89 || bytes[1] != (byte)'P') throw new InvalidDataException($"{path} is not a PNG.");
        int width = 0, height = 0, colourType = 0;
        var idat = new MemoryStream();
        for (int pos = 8; pos + 8 <= bytes.Length;)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(pos));
            string type = System.Text.Encoding.ASCII.GetString(bytes, pos + 4, 4);
            var data = bytes.AsSpan(pos + 8, length);
            if (type == "IHDR")
            {
                width = BinaryPrimitives.ReadInt32BigEndian(data);
                height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                if (data[8] != 8 || data[12] != 0) throw new InvalidDataException("Only 8-bit, non-interlaced PNGs are read here.");
                colourType = data[9];
                if (colourType is not (2 or 6)) throw new InvalidDataException($"PNG colour type {colourType} is not RGB or RGBA.");
            }
            else if (type == "IDAT") idat.Write(data);
            else if (type == "IEND") break;
            pos += 12 + length;
        }
        int channels = colourType == 6 ? 4 : 3;
        int stride = width * channels;
        using var z = new ZLibStream(new MemoryStream(idat.ToArray()), CompressionMode.Decompress);
        var raw = new MemoryStream();
        z.CopyTo(raw);
        var src = raw.ToArray();
        var previous = new byte[stride];
        var current = new byte[stride];
        var rgb = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
        {
            int filter = src[y * (stride + 1)];
            var line = src.AsSpan(y * (stride + 1) + 1, stride);
            for (int i = 0; i < stride; i++)
            {
                int a = i >= channels ? current[i - channels] : 0, b = previous[i], c = i >= channels ? previous[i - channels] : 0;
                int value = filter switch
                {
                    0 => line[i],
                    1 => line[i] + a,
                    2 => line[i] + b,
                    3 => line[i] + (a + b) / 2,
                    4 => line[i] + Paeth(a, b, c),
                    _ => throw new InvalidDataException($"Unknown PNG filter {filter}."),
                };
                current[i] = (byte)value;
            }
            for (int x = 0; x < width; x++)
                for (int k = 0; k < 3; k++) rgb[(y * width + x) * 3 + k] = current[x * channels + k];
            (previous, current) = (current, previous);
        }
        return new PngImage(width, height, rgb);
    }

    static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    /// <summary>Pixels within <paramref name="tolerance"/> (per channel) of a colour, in a rectangle.</summary>
    public int Count((byte R, byte G, byte B) colour, int tolerance, int x0 = 0, int y0 = 0, int? x1 = null, int? y1 = null)
    {
        int n = 0;
        for (int y = y0; y < (y1 ?? Height); y++)
            for (int x = x0; x < (x1 ?? Width); x++)
            {
                var p = this[x, y];
                if (Math.Abs(p.R - colour.R) <= tolerance && Math.Abs(p.G - colour.G) <= tolerance && Math.Abs(p.B - colour.B) <= tolerance) n++;
            }
        return n;
    }
}
