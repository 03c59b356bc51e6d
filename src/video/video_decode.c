#include "video/video_decode.h"

#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

/* No real video goes over this many frames per second: a file whose frames
 * come faster (a flood of tiny frames) is refused rather than decoded. */
#define MAX_STREAM_FPS 240.0
#define IO_BUF 65536

/* The demuxers (by the names libavformat gives them) and decoders that may run. */
#define FORMAT_WHITELIST "mov,matroska"
#define CODEC_WHITELIST "h264,hevc,vp8,vp9,libvpx,libvpx-vp9,av1,libdav1d,libaom-av1"

struct video_reader {
    const uint8_t *buf;
    size_t len;
    int64_t pos;
    AVFormatContext *fmt;
    AVIOContext *io;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;
    struct SwsContext *sws;
    int sws_w, sws_h, sws_fmt;
    int stream;
    AVRational tb;
    int64_t start_pts;
    video_limits lim;
    video_info info;
    int64_t decoded, handed, packets, max_packets;
    double next_t, last_t, dec_s;
    bool draining;
};

static int io_read(void *opaque, uint8_t *out, int n)
{
    video_reader *v = opaque;
    if (n <= 0 || v->pos < 0 || (size_t)v->pos >= v->len) return AVERROR_EOF;
    size_t left = v->len - (size_t)v->pos, take = (size_t)n < left ? (size_t)n : left;
    memcpy(out, v->buf + v->pos, take);
    v->pos += (int64_t)take;
    return (int)take;
}

static int64_t io_seek(void *opaque, int64_t off, int whence)
{
    video_reader *v = opaque;
    whence &= ~AVSEEK_FORCE;
    if (whence == AVSEEK_SIZE) return (int64_t)v->len;
    int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? v->pos
        : whence == SEEK_END                                   ? (int64_t)v->len
                                                               : -1;
    if (base < 0 || off > (int64_t)v->len || off < -(int64_t)v->len) return AVERROR(EINVAL);
    int64_t to = base + off;
    if (to < 0 || to > (int64_t)v->len) return AVERROR(EINVAL);
    v->pos = to;
    return to;
}

/* Demuxers may ask to open other files (a QuickTime reference, a playlist
 * entry): never. */
static int io_open_refused(struct AVFormatContext *s, AVIOContext **pb, const char *url, int flags, AVDictionary **options)
{
    (void)s, (void)pb, (void)url, (void)flags, (void)options;
    return AVERROR(EPERM);
}

/* code with msg, followed by libav's reason when averr is one. */
static int fail(sight_error *err, const char *code, const char *msg, int averr)
{
    char why[128] = "";
    if (averr) av_strerror(averr, why, sizeof why);
    sight_error_set(err, code, "%s%s%s", msg, averr ? ": " : "", why);
    return -1;
}

/* The decoder for a stream: by id, from the allowlist only; for AV1 the
 * software decoders that exist in this build. */
static const AVCodec *pick_decoder(enum AVCodecID id)
{
    switch (id) {
    case AV_CODEC_ID_H264:
    case AV_CODEC_ID_HEVC:
    case AV_CODEC_ID_VP8:
    case AV_CODEC_ID_VP9:
        return avcodec_find_decoder(id);
    case AV_CODEC_ID_AV1: {
        const AVCodec *c = avcodec_find_decoder_by_name("libdav1d");
        return c ? c : avcodec_find_decoder_by_name("libaom-av1");
    }
    default:
        return NULL;
    }
}

static int open_input(video_reader *v, video_format f, sight_error *err)
{
    uint8_t *iob = av_malloc(IO_BUF);
    v->fmt = avformat_alloc_context();
    if (iob) v->io = avio_alloc_context(iob, IO_BUF, 0, v, io_read, NULL, io_seek);
    if (!v->fmt || !v->io) {
        if (!v->io) av_free(iob);
        return fail(err, "out_of_memory", "out of memory", 0);
    }
    v->fmt->pb = v->io;
    v->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    v->fmt->io_open = io_open_refused;
    v->fmt->max_streams = 16;
    v->fmt->format_whitelist = av_strdup(FORMAT_WHITELIST);
    v->fmt->codec_whitelist = av_strdup(CODEC_WHITELIST);
    v->fmt->protocol_whitelist = av_strdup("none");
    const AVInputFormat *in = av_find_input_format(f == VIDEO_FMT_MP4 ? "mov" : "matroska");
    if (!in) return fail(err, "unsupported_video", "this build of libavformat has no demuxer for it", 0);
    /* An edit list can replay the same samples any number of times (a
     * looping index that multiplies the frames): ignored, the samples are
     * decoded once each in their stored order. */
    AVDictionary *opts = NULL;
    if (f == VIDEO_FMT_MP4) av_dict_set(&opts, "ignore_editlist", "1", 0);
    /* No file name: the bytes come through the I/O context above. */
    int rc = avformat_open_input(&v->fmt, NULL, in, &opts);
    av_dict_free(&opts);
    if (rc < 0) {
        v->fmt = NULL; /* freed by avformat_open_input */
        return fail(err, "corrupt_video", "the video's container could not be read", rc);
    }
    return 0;
}

/* Refuses what the header already shows is over the limits. */
static int check_header(video_reader *v, const AVStream *st, sight_error *err)
{
    const AVCodecParameters *cp = st->codecpar;
    v->info.width = cp->width;
    v->info.height = cp->height;
    if (cp->width < 0 || cp->height < 0 || (v->lim.max_pixels && (uint64_t)cp->width * (uint64_t)cp->height > v->lim.max_pixels)) {
        sight_error_set(err, "video_too_large", "the video's frames are %dx%d, over the %llu-pixel budget per frame", cp->width,
                        cp->height, (unsigned long long)v->lim.max_pixels);
        return -1;
    }
    AVRational fr = st->avg_frame_rate.num > 0 && st->avg_frame_rate.den > 0 ? st->avg_frame_rate : st->r_frame_rate;
    v->info.fps = fr.num > 0 && fr.den > 0 ? av_q2d(fr) : 0;
    double dur = 0;
    if (st->duration > 0 && st->duration != AV_NOPTS_VALUE) dur = (double)st->duration * av_q2d(st->time_base);
    else if (v->fmt->duration > 0) dur = (double)v->fmt->duration / AV_TIME_BASE;
    v->info.duration_ms = (int64_t)llround(dur * 1000.0);
    if (v->lim.max_seconds > 0 && dur > v->lim.max_seconds) {
        sight_error_set(err, "video_too_long", "the video lasts %.1f s, over the %.0f s allowed (--max-video-seconds)", dur, v->lim.max_seconds);
        return -1;
    }
    double secs = v->lim.max_seconds > 0 ? v->lim.max_seconds : 3600.0;
    v->max_packets = (int64_t)(secs * MAX_STREAM_FPS) + 1000;
    if (st->nb_frames > v->max_packets || (dur > 0 && st->nb_frames > dur * MAX_STREAM_FPS + 10)) {
        sight_error_set(err, "video_too_many_frames", "the video's index lists %lld frames%s", (long long)st->nb_frames,
                        dur > 0 ? ", more than a real video of its length has" : "");
        return -1;
    }
    return 0;
}

static int open_decoder(video_reader *v, const AVStream *st, sight_error *err)
{
    const AVCodec *c = pick_decoder(st->codecpar->codec_id);
    v->info.codec = avcodec_get_name(st->codecpar->codec_id);
    if (!c) {
        sight_error_set(err, "unsupported_video", "video codec %s is not supported (H.264, H.265, VP8, VP9, AV1 are)", v->info.codec);
        return -1;
    }
    v->dec = avcodec_alloc_context3(c);
    if (!v->dec) return fail(err, "out_of_memory", "out of memory", 0);
    int rc = avcodec_parameters_to_context(v->dec, st->codecpar);
    if (rc < 0) return fail(err, "corrupt_video", "the video's codec parameters are invalid", rc);
    v->dec->codec_whitelist = av_strdup(CODEC_WHITELIST);
    /* The decoder refuses frames over the budget before allocating them, and
     * runs on the caller's thread only (--workers bounds the parallelism). */
    if (v->lim.max_pixels) v->dec->max_pixels = (int64_t)v->lim.max_pixels;
    v->dec->thread_count = 1;
    v->dec->pkt_timebase = st->time_base;
    rc = avcodec_open2(v->dec, c, NULL);
    if (rc < 0) return fail(err, "unsupported_video", "the video's decoder could not start", rc);
    return 0;
}

video_reader *video_open(const uint8_t *buf, size_t len, const video_limits *lim, sight_error *err)
{
    video_format f = video_sniff(buf, len);
    if (f == VIDEO_FMT_NONE) {
        sight_error_set(err, "unsupported_video", "%s", "not an MP4/MOV or WebM/Matroska file");
        return NULL;
    }
    av_log_set_level(AV_LOG_QUIET);
    video_reader *v = calloc(1, sizeof *v);
    if (!v) {
        sight_error_set(err, "out_of_memory", "out of memory");
        return NULL;
    }
    v->buf = buf;
    v->len = len;
    v->lim = *lim;
    v->stream = -1;
    v->last_t = -1;
    double t0 = clock_s();
    int rc = open_input(v, f, err);
    if (rc == 0) {
        int s = av_find_best_stream(v->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
        if (s < 0) rc = fail(err, "unsupported_video", "the file has no video stream", 0);
        else v->stream = s;
    }
    if (rc == 0) {
        for (unsigned i = 0; i < v->fmt->nb_streams; i++)
            if ((int)i != v->stream) v->fmt->streams[i]->discard = AVDISCARD_ALL;
        AVStream *st = v->fmt->streams[v->stream];
        v->tb = st->time_base;
        v->start_pts = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
        rc = check_header(v, st, err);
        if (rc == 0) rc = open_decoder(v, st, err);
    }
    if (rc == 0 && (!(v->pkt = av_packet_alloc()) || !(v->frame = av_frame_alloc())))
        rc = fail(err, "out_of_memory", "out of memory", 0);
    v->dec_s = clock_s() - t0;
    if (rc != 0) {
        video_close(v);
        return NULL;
    }
    return v;
}

const video_info *video_reader_info(const video_reader *v) { return &v->info; }
int64_t video_decoded_frames(const video_reader *v) { return v->decoded; }
double video_decode_seconds(const video_reader *v) { return v->dec_s; }

void video_close(video_reader *v)
{
    if (!v) return;
    sws_freeContext(v->sws);
    av_frame_free(&v->frame);
    av_packet_free(&v->pkt);
    avcodec_free_context(&v->dec);
    if (v->fmt) avformat_close_input(&v->fmt);
    if (v->io) {
        av_freep(&v->io->buffer);
        avio_context_free(&v->io);
    }
    free(v);
}

/* The frame in v->frame, scaled (down only) to the fit box, as RGB. */
static int to_rgb(video_reader *v, image_t *img, sight_error *err)
{
    const AVFrame *fr = v->frame;
    int w = fr->width, h = fr->height;
    if (w <= 0 || h <= 0 || (v->lim.max_pixels && (uint64_t)w * (uint64_t)h > v->lim.max_pixels)) {
        sight_error_set(err, "video_too_large", "a frame is %dx%d, over the pixel budget", w, h);
        return -1;
    }
    double s = 1.0;
    if (v->lim.fit_w > 0 && v->lim.fit_h > 0) {
        s = fmax((double)v->lim.fit_w / w, (double)v->lim.fit_h / h);
        if (s > 1.0) s = 1.0;
    }
    int ow = (int)lround(w * s), oh = (int)lround(h * s);
    if (ow < 1) ow = 1;
    if (oh < 1) oh = 1;
    v->sws = sws_getCachedContext(v->sws, w, h, fr->format, ow, oh, AV_PIX_FMT_RGB24, SWS_BILINEAR, NULL, NULL, NULL);
    uint8_t *px = malloc((size_t)ow * oh * 3);
    if (!v->sws || !px) {
        free(px);
        return fail(err, v->sws ? "out_of_memory" : "unsupported_video", "the frame's pixels could not be converted", 0);
    }
    uint8_t *dst[4] = {px};
    int stride[4] = {ow * 3};
    if (sws_scale(v->sws, (const uint8_t *const *)fr->data, fr->linesize, 0, h, dst, stride) != oh) {
        free(px);
        return fail(err, "corrupt_video", "a frame could not be converted", 0);
    }
    *img = (image_t){.width = ow, .height = oh, .orig_width = w, .orig_height = h, .format = IMAGE_FMT_UNKNOWN, .exif_orientation = 1, .pixels = px};
    return 0;
}

/* Whether the frame just decoded is one to analyse, and its time. */
static bool sample(video_reader *v, double *t)
{
    int64_t ts = v->frame->best_effort_timestamp;
    if (ts != AV_NOPTS_VALUE) *t = (double)(ts - v->start_pts) * av_q2d(v->tb);
    else *t = v->info.fps > 0 ? (double)(v->decoded - 1) / v->info.fps : v->last_t + 0.04;
    if (*t < 0) *t = 0;
    if (*t > v->last_t) v->last_t = *t;
    if (v->lim.fps <= 0) return true;
    if (*t + 1e-6 < v->next_t) return false;
    v->next_t = (floor(*t * v->lim.fps + 1e-6) + 1.0) / v->lim.fps;
    return true;
}

/* A flood of frames (far more than a real video has for the time covered). */
static int check_rate(video_reader *v, sight_error *err)
{
    double covered = v->last_t > 0 ? v->last_t : 0;
    if ((double)v->decoded > (covered + 1.0) * MAX_STREAM_FPS || v->packets > v->max_packets) {
        sight_error_set(err, "video_too_many_frames", "%lld frames in %.2f s of video: more than %.0f per second", (long long)v->decoded, covered,
                        MAX_STREAM_FPS);
        return -1;
    }
    if (v->lim.max_seconds > 0 && v->last_t > v->lim.max_seconds) {
        sight_error_set(err, "video_too_long", "the video goes on past the %.0f s allowed (--max-video-seconds)", v->lim.max_seconds);
        return -1;
    }
    return 0;
}

/* The container ended: a file cut short leaves its declared duration unreached. */
static int at_end(video_reader *v, sight_error *err)
{
    double dur = (double)v->info.duration_ms / 1000.0, step = v->info.fps > 0 ? 1.0 / v->info.fps : 0.1;
    if (dur > 0 && v->handed < v->lim.max_frames && v->last_t + 3 * step + 0.1 < dur) {
        sight_error_set(err, "corrupt_video", "the video ends at %.2f s of the %.2f s it declares: truncated", v->last_t < 0 ? 0 : v->last_t, dur);
        return -1;
    }
    return 0;
}

static int next(video_reader *v, image_t *img, int64_t *frame_no, int64_t *time_ms, sight_error *err)
{
    for (;;) {
        if (v->lim.cancelled && atomic_load(v->lim.cancelled)) {
            sight_error_set(err, "cancelled", "%s", "request cancelled");
            return -1;
        }
        if (v->lim.max_frames > 0 && v->handed >= v->lim.max_frames) return 0;
        int rc = avcodec_receive_frame(v->dec, v->frame);
        if (rc == 0) {
            v->decoded++;
            double t;
            bool take = sample(v, &t);
            if (check_rate(v, err) != 0) return -1;
            if (take) {
                rc = to_rgb(v, img, err);
                av_frame_unref(v->frame);
                if (rc != 0) return -1;
                *frame_no = v->decoded - 1;
                *time_ms = (int64_t)llround(t * 1000.0);
                v->handed++;
                return 1;
            }
            av_frame_unref(v->frame);
            continue;
        }
        if (rc == AVERROR_EOF) return at_end(v, err);
        if (rc != AVERROR(EAGAIN)) return fail(err, "corrupt_video", "a frame could not be decoded", rc);
        if (v->draining) return at_end(v, err);
        rc = av_read_frame(v->fmt, v->pkt);
        if (rc == AVERROR_EOF) {
            v->draining = true;
            avcodec_send_packet(v->dec, NULL);
            continue;
        }
        if (rc < 0) return fail(err, "corrupt_video", "the video's data could not be read (truncated or corrupt)", rc);
        if (++v->packets > v->max_packets) {
            av_packet_unref(v->pkt);
            return check_rate(v, err);
        }
        if (v->pkt->stream_index != v->stream) {
            av_packet_unref(v->pkt);
            continue;
        }
        bool cut = v->pkt->flags & AV_PKT_FLAG_CORRUPT;
        rc = cut ? 0 : avcodec_send_packet(v->dec, v->pkt);
        av_packet_unref(v->pkt);
        if (cut) return fail(err, "corrupt_video", "the video's data ends inside a frame: truncated", 0);
        if (rc < 0 && rc != AVERROR(EAGAIN)) return fail(err, "corrupt_video", "a packet could not be decoded", rc);
    }
}

int video_next(video_reader *v, image_t *img, int64_t *frame_no, int64_t *time_ms, sight_error *err)
{
    double t0 = clock_s();
    int rc = next(v, img, frame_no, time_ms, err);
    v->dec_s += clock_s() - t0;
    return rc;
}
