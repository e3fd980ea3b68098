/* log.h - levelled logging to stderr. stdout belongs to program output, never to logs.
 *
 * The level comes from DSM_LOG (error|warn|info|debug; default info) read once by dsm_log_init(),
 * or from dsm_log_set_level(). Thread-safe: each line is one fprintf on stderr.
 */
#ifndef DSM_LOG_H
#define DSM_LOG_H

enum dsm_log_level { DSM_LOG_ERROR = 0, DSM_LOG_WARN = 1, DSM_LOG_INFO = 2, DSM_LOG_DEBUG = 3 };

/* Read DSM_LOG from the environment. Call once from main(); harmless to call again. */
void dsm_log_init(void);
void dsm_log_set_level(enum dsm_log_level level);
enum dsm_log_level dsm_log_get_level(void);

/* Write one line "dsm: <level>: <func>: <message>" when level is enabled. */
void dsm_log_write(enum dsm_log_level level, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_ERROR(...) dsm_log_write(DSM_LOG_ERROR, __func__, __VA_ARGS__)
#define LOG_WARN(...) dsm_log_write(DSM_LOG_WARN, __func__, __VA_ARGS__)
#define LOG_INFO(...) dsm_log_write(DSM_LOG_INFO, __func__, __VA_ARGS__)
#define LOG_DEBUG(...) dsm_log_write(DSM_LOG_DEBUG, __func__, __VA_ARGS__)

#endif
